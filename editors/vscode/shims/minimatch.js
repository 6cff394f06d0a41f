// Bundled in place of minimatch (esbuild --alias): vscode-languageclient only builds matchers with
// `new Minimatch(glob, options)`, `.makeRe()` and `.match(path)` for the globs of the LSP specification
// (`*`, `?`, `**`, `{a,b}`, `[a-z]`, `[!a]`), and minimatch (or picomatch) for that grammar alone would
// cost the .vsix its 100 KB budget.
'use strict';

function globToRegExp(glob, options) {
  let re = '';
  let depth = 0;
  const star = options.dot ? '[^/]*' : '(?!\\.)[^/]*';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') {
      if (glob[i + 1] === '*') {
        i++;
        if (glob[i + 1] === '/') {
          i++;
          re += options.dot ? '(?:[^/]*/)*' : '(?:(?!\\.)[^/]*/)*';
        } else {
          re += options.dot ? '.*' : '(?:(?!\\.)[^/]*(?:/|$))*';
        }
      } else {
        re += star;
      }
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '{') {
      depth++;
      re += '(?:';
    } else if (c === '}' && depth > 0) {
      depth--;
      re += ')';
    } else if (c === ',' && depth > 0) {
      re += '|';
    } else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let set = glob.slice(i + 1, end).replace(/\\/g, '\\\\');
      if (set[0] === '!') {
        set = '^' + set.slice(1);
      }
      re += '[' + set + ']';
      i = end;
    } else {
      re += c.replace(/[.+^$()|\\/\]]/g, '\\$&');
    }
  }
  if (depth !== 0) {
    return false;
  }
  try {
    return new RegExp('^' + re + '$', options.nocase ? 'i' : '');
  } catch {
    return false;
  }
}

class Minimatch {
  constructor(pattern, options = {}) {
    this.pattern = pattern;
    this.re = globToRegExp(pattern, options);
  }
  makeRe() {
    return this.re;
  }
  match(path) {
    return !!this.re && this.re.test(path);
  }
}

module.exports = { Minimatch, minimatch: (path, pattern, options) => new Minimatch(pattern, options).match(path) };
