/**
 * The strategies' registry, and the seam it guards: no code outside src/strategies
 * compares a strategy by its name (an ===, !==, == or != with a `strategy` on either
 * side, or a switch on one); it asks the strategy instead.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import ts from "typescript";
import { lineOf, nodes, parse, projectSources } from "../testing/source-scan.js";
import { DEFAULT_STRATEGY, STRATEGY_NAMES, strategy } from "./registry.js";

const COMPARISONS = new Set([
  ts.SyntaxKind.EqualsEqualsEqualsToken,
  ts.SyntaxKind.ExclamationEqualsEqualsToken,
  ts.SyntaxKind.EqualsEqualsToken,
  ts.SyntaxKind.ExclamationEqualsToken,
]);

const namesStrategy = (e: ts.Expression): boolean =>
  (ts.isIdentifier(e) && e.text === "strategy") ||
  (ts.isPropertyAccessExpression(e) && e.name.text === "strategy");

/** Where `file` compares a strategy by name. */
function comparisons(file: ts.SourceFile): number[] {
  const out: number[] = [];
  for (const n of nodes(file)) {
    if (ts.isBinaryExpression(n) && COMPARISONS.has(n.operatorToken.kind)) {
      if (namesStrategy(n.left) || namesStrategy(n.right)) out.push(lineOf(n));
    } else if (ts.isSwitchStatement(n) && namesStrategy(n.expression)) out.push(lineOf(n));
  }
  return out;
}

describe("failover strategies", () => {
  it("lists resurrect (the default), standby and none, each under its own name", () => {
    assert.deepEqual(STRATEGY_NAMES, ["resurrect", "standby", "none"]);
    assert.equal(DEFAULT_STRATEGY, "resurrect");
    for (const n of STRATEGY_NAMES) assert.equal(strategy(n).name, n);
    assert.throws(
      () => strategy("phoenix"),
      /no failover strategy "phoenix" \(known: resurrect, standby, none\)/,
    );
  });

  it("says what each does: only none leaves a failed instance, only standby keeps warm VMs and needs ports", () => {
    assert.deepEqual(
      STRATEGY_NAMES.map((n) => [n, strategy(n).recovers, strategy(n).instanceVip, strategy(n).warmStandbys]),
      [
        ["resurrect", true, false, false],
        ["standby", true, true, true],
        ["none", false, false, false],
      ],
    );
    assert.deepEqual(
      strategy("standby")
        .check({ ports: [] })
        .map((p) => p.field),
      ["ports"],
    );
    assert.deepEqual(strategy("standby").check({ ports: [8080] }), []);
  });

  it("is never compared by name outside src/strategies", () => {
    const found = projectSources()
      .filter(({ rel }) => !rel.startsWith("src/strategies/") && !rel.startsWith("src/testing/"))
      .flatMap(({ rel, file }) => comparisons(file).map((line) => `${rel}:${line}`));
    assert.deepEqual(found, [], `strategies compared by name:\n${found.join("\n")}`);
  });

  it("catches a comparison (the check itself can fail)", () => {
    const file = parse('if (g.strategy === "standby") x();\nswitch (strategy) {}\nif (a === b) y();\n');
    assert.deepEqual(comparisons(file), [1, 2]);
  });
});
