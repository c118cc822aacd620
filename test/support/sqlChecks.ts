/**
 * Checks shared by the SQL backends' own tests: properties of the key encoding that the conformance suite's keys do
 * not reach.
 */
import { assert } from "@effect/vitest"
import type { BaseKvStore } from "effect-kv"
import * as Effect from "effect/Effect"

/** 1024 random CJK characters: 2 KiB as UTF-16, 3 KiB as UTF-8 (past PostgreSQL's index entry limit), incompressible. */
export const longCjkKey = (): string => {
  let key = ""
  for (let i = 0; i < 1024; i++) key += String.fromCharCode(0x4E00 + Math.floor(Math.random() * 20_000))
  return key
}

/**
 * Keys around prefixes whose encoding ends in 0xFF bytes (U+00FF, U+01FF, U+FFFF, U+10FFFF), where the range's upper
 * bound must carry: every listing must equal the one JavaScript computes.
 */
export const checkPrefixesEndingInFF = (store: BaseKvStore) =>
  Effect.gen(function*() {
    const keys = ["a\u00FF", "a\u00FFb", "a\u0100", "a\u01FF", "a\u01FF\u00FF", "a\u0200", "a\uFFFF", "a\uFFFFz"]
      .concat(["a\u{10FFFF}", "a\u{10FFFF}\uFFFF", "a\uFFFE", "b"])
    yield* store.setMany(keys.map((key) => [key, "v"] as const))
    for (const prefix of ["a\u00FF", "a\u01FF", "a\uFFFF", "a\u{10FFFF}", "a", ""]) {
      const expected = keys.filter((key) => key.startsWith(prefix)).map((key) => key.slice(prefix.length)).sort()
      assert.deepStrictEqual(yield* store.list(prefix), expected, `list(${JSON.stringify(prefix)})`)
      assert.strictEqual(yield* store.count(prefix), expected.length, `count(${JSON.stringify(prefix)})`)
    }
  })
