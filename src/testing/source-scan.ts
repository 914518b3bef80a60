/**
 * Reads the project's own TypeScript sources for the tests that guard its seams
 * (no service named outside its folder, no strategy compared by name): the files,
 * and their syntax trees, so comments never count.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import ts from "typescript";
import { repoPath } from "../cli/home.js";

/** Every non-test .ts file under src/, as a repo-relative path with its syntax tree. */
export function projectSources(): Array<{ rel: string; file: ts.SourceFile }> {
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory()
        ? walk(join(dir, e.name))
        : e.name.endsWith(".ts") && !e.name.endsWith(".test.ts")
          ? [join(dir, e.name)]
          : [],
    );
  return walk(repoPath("src")).map((path) => ({
    rel: relative(repoPath(), path).split(sep).join("/"),
    file: parse(readFileSync(path, "utf8")),
  }));
}

export const parse = (text: string): ts.SourceFile =>
  ts.createSourceFile("x.ts", text, ts.ScriptTarget.ES2022, true);

export const lineOf = (n: ts.Node): number =>
  n.getSourceFile().getLineAndCharacterOfPosition(n.getStart()).line + 1;

/** Every node of the tree, depth first. */
export function* nodes(n: ts.Node): Generator<ts.Node> {
  yield n;
  for (const c of n.getChildren()) yield* nodes(c);
}

/** Every string the code holds (string and template literal parts; not import paths), with its line. */
export function stringsIn(file: ts.SourceFile): Array<{ value: string; line: number }> {
  const out: Array<{ value: string; line: number }> = [];
  for (const n of nodes(file)) {
    const literal =
      ts.isStringLiteralLike(n) || ts.isTemplateHead(n) || ts.isTemplateMiddle(n) || ts.isTemplateTail(n);
    if (literal && !ts.isImportDeclaration(n.parent) && !ts.isExportDeclaration(n.parent))
      out.push({ value: n.text, line: lineOf(n) });
  }
  return out;
}
