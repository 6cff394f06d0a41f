// Caret ranges (`^1.91.0`), the only form vscode-languageclient asks about; see parse.js.
'use strict';
const parse = require('./parse');
module.exports = function satisfies(version, range) {
  const v = typeof version === 'string' ? parse(version) : version;
  const r = parse(String(range).replace(/^\^/, ''));
  if (!v || !r || !/^\^/.test(String(range)) || (v.prerelease && v.prerelease.length > 0)) {
    return false;
  }
  const at = (x) => [x.major, x.minor, x.patch];
  const [a, b] = [at(v), at(r)];
  const cmp = a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
  return v.major === r.major && cmp >= 0;
};
