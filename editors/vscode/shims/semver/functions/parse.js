// Bundled in place of semver (esbuild --alias): vscode-languageclient parses VS Code's version and checks
// it against one caret range; semver's full grammar would cost the .vsix its 100 KB budget.
'use strict';
module.exports = function parse(v) {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?/.exec(String(v).trim());
  return m ? { major: +m[1], minor: +m[2], patch: +m[3], prerelease: m[4] ? m[4].split('.') : [] } : null;
};
