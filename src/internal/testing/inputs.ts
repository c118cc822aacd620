/**
 * The inputs the checks feed a store: what an untyped JavaScript caller can pass as a key, value, prefix or ttl, each
 * with the reason it must be refused for, and keys whose characters are special to some backend.
 *
 * @internal
 */
import type { InputReason } from "../../BaseKvStore.ts"
import { MAX_KEY_LENGTH, MAX_VALUE_LENGTH } from "../../BaseKvStore.ts"

/** Arguments an untyped JavaScript caller can pass, each with the reason it must be refused for. */
export const badKeys: ReadonlyArray<readonly [string, unknown, InputReason]> = [
  ["a number", 42, "NotAString"],
  ["undefined", undefined, "NotAString"],
  ["null", null, "NotAString"],
  ["an object", { toString: () => "k" }, "NotAString"],
  ["a String object", new String("k"), "NotAString"],
  ["an array", ["k"], "NotAString"],
  ["a symbol", Symbol("k"), "NotAString"],
  ["the empty string", "", "Empty"],
  ["a key one longer than MAX_KEY_LENGTH", "k".repeat(MAX_KEY_LENGTH + 1), "TooLong"],
  ["a lone high surrogate", "k\uD800", "MalformedUnicode"],
  ["a lone low surrogate", "\uDC00k", "MalformedUnicode"]
]

export const badValues: ReadonlyArray<readonly [string, unknown, InputReason]> = [
  ["a number", 1, "NotAString"],
  ["undefined", undefined, "NotAString"],
  ["null", null, "NotAString"],
  ["an object", { a: 1 }, "NotAString"],
  ["a Uint8Array", new Uint8Array([1, 2]), "NotAString"],
  ["a value one longer than MAX_VALUE_LENGTH", "v".repeat(MAX_VALUE_LENGTH + 1), "TooLong"],
  ["a lone surrogate", "v\uD83D", "MalformedUnicode"]
]

export const badPrefixes: ReadonlyArray<readonly [string, unknown, InputReason]> = [
  ["undefined", undefined, "NotAString"],
  ["null", null, "NotAString"],
  ["a number", 7, "NotAString"],
  ["a RegExp", /^a/, "NotAString"],
  ["a prefix one longer than MAX_KEY_LENGTH", "p".repeat(MAX_KEY_LENGTH + 1), "TooLong"],
  ["a lone surrogate", "\uDBFF", "MalformedUnicode"]
]

/** Characters that are special somewhere: globs (Redis SCAN MATCH), LIKE, regexes, paths, URLs, separators. */
export const specialKeys = [
  "a*",
  "a*b",
  "ab",
  "a?",
  "ax",
  "a[b]",
  "ab]",
  "[ab]",
  "a\\",
  "a\\*",
  "a%",
  "a_",
  "a.b",
  "a/b",
  "a:b",
  "a b",
  "a\nb",
  "a\tb",
  "a^$|+()"
]

export const unicodeKeys = [
  "日本:東京",
  "日本:大阪",
  "日:x",
  "😀:1",
  "😀:2",
  "😀😀",
  "é",
  "e\u0301",
  "\uFF5E",
  "\u{1F600}z"
]

/** Values an untyped caller can pass as a ttl, none a finite duration of at least 1 ms. */
export const badTtls: ReadonlyArray<readonly [string, unknown]> = [
  ["-1", -1],
  ["0", 0],
  ["0.5 (under a millisecond)", 0.5],
  ["NaN", NaN],
  ["Infinity", Infinity],
  ["\"Infinity\"", "Infinity"],
  ["an unparsable string", "soon"],
  ["\"-5 seconds\"", "-5 seconds"],
  ["an empty object", {}],
  ["an object that is no duration", { ms: 100 }],
  ["null", null],
  ["true", true],
  ["a function", () => 100]
]
