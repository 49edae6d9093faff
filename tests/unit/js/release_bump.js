// The next version release-please computes from a current version and commit messages, with this
// repository's release-please-config.json: node release_bump.js RELEASE_PLEASE_DIR CONFIG VERSION JSON_MESSAGES
const root = process.argv[2];
const {DefaultVersioningStrategy} = require(root + '/build/src/versioning-strategies/default');
const {Version} = require(root + '/build/src/version');
const {parseConventionalCommits} = require(root + '/build/src/commit');
const config = require(process.argv[3]);
const current = Version.parse(process.argv[4]);
const messages = JSON.parse(process.argv[5]);
const commits = parseConventionalCommits(messages.map((message, i) => ({sha: 'abc' + i, message, files: []})));
const strategy = new DefaultVersioningStrategy({bumpMinorPreMajor: config['bump-minor-pre-major'] || false,
                                                bumpPatchForMinorPreMajor: config['bump-patch-for-minor-pre-major'] || false});
Promise.resolve(strategy.bump(current, commits)).then(v => console.log(v.toString()));
