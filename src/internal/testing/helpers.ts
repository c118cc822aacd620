/**
 * What the checks share besides their inputs: writing and reading a set of entries, the contract's key order, and
 * the assertions that an operation was refused with the `KvInputError` the contract names.
 *
 * @internal
 */
import { assert } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import {
  type Argument,
  type BaseKvStore,
  type InputReason,
  isKvInputError,
  type KvInputError,
  type ListPage,
  type Operation
} from "../../BaseKvStore.ts"

export const setAll = (store: BaseKvStore, entries: ReadonlyArray<readonly [string, string]>) =>
  Effect.forEach(entries, ([key, value]) => store.set(key, value), { discard: true })

export const shuffled = <A>(items: ReadonlyArray<A>): Array<A> => {
  const copy = [...items]
  // Fixed permutation: insertion order must not be mistaken for sort order, and a failure must be reproducible.
  for (let i = copy.length - 1; i > 0; i--) {
    const j = (i * 7919 + 13) % (i + 1)
    ;[copy[i], copy[j]] = [copy[j], copy[i]]
  }
  return copy
}

/** The order the contract promises: UTF-16 code units, as the default `Array.prototype.sort` compares. */
export const sorted = (keys: Iterable<string>): Array<string> => [...keys].sort()

export const expectInputError = (
  label: string,
  effect: Effect.Effect<unknown, unknown>,
  expected: {
    readonly operation: Operation
    readonly argument: "key" | "value" | "prefix"
    readonly reason: InputReason
    readonly key: string | undefined
  }
) =>
  Effect.gen(function*() {
    const result = yield* Effect.result(effect)
    const where = `${expected.operation} with ${label} as the ${expected.argument}`
    if (Result.isSuccess(result)) return assert.fail(`${where}: succeeded instead of failing with KvInputError`)
    assert.isTrue(isKvInputError(result.failure), `${where}: fails with KvInputError`)
    const { argument, key, message, operation, reason } = result.failure as KvInputError
    assert.deepStrictEqual({ operation, argument, reason, key }, expected, where)
    assert.include(message, operation, `${where}: the message names the operation`)
    assert.include(message, expected.argument, `${where}: the message names the argument`)
  })

export const assertStoreHolds = (store: BaseKvStore, entries: ReadonlyArray<readonly [string, string]>) =>
  Effect.gen(function*() {
    assert.deepStrictEqual(yield* store.list(""), sorted(entries.map(([key]) => key)))
    for (const [key, value] of entries) {
      assert.strictEqual(yield* store.get(key), value, `value of ${JSON.stringify(key)}`)
    }
  })

export const millisOf = (duration: Duration.Duration | null): number | null =>
  duration === null ? null : Duration.toMillis(duration)

export const expectRefused = (
  label: string,
  effect: Effect.Effect<unknown, unknown>,
  expected: { readonly operation: Operation; readonly argument: Argument; readonly reason?: InputReason }
) =>
  Effect.gen(function*() {
    const result = yield* Effect.result(effect)
    const where = `${expected.operation} with ${label}`
    if (Result.isSuccess(result)) return assert.fail(`${where}: succeeded instead of failing with KvInputError`)
    assert.isTrue(isKvInputError(result.failure), `${where}: fails with KvInputError`)
    const error = result.failure as KvInputError
    assert.strictEqual(error.operation, expected.operation, `${where}: operation`)
    assert.strictEqual(error.argument, expected.argument, `${where}: argument`)
    if (expected.reason !== undefined) assert.strictEqual(error.reason, expected.reason, `${where}: reason`)
    assert.include(error.message, expected.operation, `${where}: the message names the operation`)
  })

export const increment = (current: string | null) => String(Number(current ?? "0") + 1)

/** Every page of a listing, following the cursors. */
export const allPages = (store: BaseKvStore, prefix: string, limit: number) =>
  Effect.gen(function*() {
    const pages: Array<ReadonlyArray<string>> = []
    let cursor: string | null = null
    do {
      const page: ListPage = yield* store.listPage(prefix, { limit, cursor })
      assert.isAtMost(page.keys.length, limit, "a page holds at most limit keys")
      pages.push(page.keys)
      cursor = page.cursor
      assert.isBelow(pages.length, 100_000, "the cursors end")
    } while (cursor !== null)
    return pages
  })
