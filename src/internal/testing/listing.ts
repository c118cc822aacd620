/**
 * The conformance checks of listing in pages: `listPage` and its cursors, a listing that changes between pages,
 * `listStream`, and the laziness of every operation added since the first four.
 *
 * @internal
 */
import { assert } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { inspect } from "node:util"
import {
  BaseKvStoreService,
  isKvInputError,
  type ListPage,
  type ListPageOptions,
  MAX_PAGE_LIMIT
} from "../../BaseKvStore.ts"
import type { Check } from "./check.ts"
import { allPages, expectRefused, shuffled, sorted } from "./helpers.ts"
import { badPrefixes, specialKeys, unicodeKeys } from "./inputs.ts"

export const listingChecks: ReadonlyArray<Check> = [
  {
    id: "list-page",
    name: "listPage pages through list(prefix) in order, each key once, with an opaque cursor",
    timeout: 60_000,
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      const ids = [...unicodeKeys, ...specialKeys, ...Array.from({ length: 40 }, (_, i) => `n${i}`)]
      yield* store.setMany(shuffled(ids).map((id) => [`p:${id}`, "v"]))
      yield* store.setMany([["p", "not under p:"], ["p:", "the prefix itself, listed as \"\""], ["q:1", "v"]])
      const listed = yield* store.list("p:")
      for (const limit of [1, 2, 7, listed.length - 1, listed.length, listed.length + 1, 1000]) {
        const pages = yield* allPages(store, "p:", limit)
        assert.deepStrictEqual(pages.flat(), listed, `pages of ${limit} concatenate to list`)
        for (const page of pages.slice(0, -1)) assert.strictEqual(page.length, limit, "only the last page is short")
      }
      const first = yield* store.listPage("p:", { limit: 3 })
      assert.deepStrictEqual(first.keys, listed.slice(0, 3))
      assert.isString(first.cursor)
      assert.deepStrictEqual(yield* store.listPage("none:", { limit: 3 }), { keys: [], cursor: null })
      assert.deepStrictEqual(yield* store.listPage("p:", { limit: 3, cursor: null }), first)
      const all = yield* store.listPage("", { limit: 1000 })
      assert.deepStrictEqual(all.keys, yield* store.list(""))
      assert.isNull(all.cursor)
      for (const limit of [0, -1, 1.5, NaN, MAX_PAGE_LIMIT + 1, "10", undefined]) {
        yield* expectRefused(`limit ${String(limit)}`, store.listPage("p:", { limit: limit as number }), {
          operation: "listPage",
          argument: "limit",
          reason: "InvalidOption"
        })
      }
      for (const cursor of ["", "garbage", "kv1.!!", "kv1.a", 42, {}]) {
        yield* expectRefused(
          `cursor ${inspect(cursor)}`,
          store.listPage("p:", { limit: 3, cursor: cursor as string }),
          {
            operation: "listPage",
            argument: "cursor",
            reason: "InvalidOption"
          }
        )
      }
      for (const options of [undefined, null, 5]) {
        yield* expectRefused(
          `options ${String(options)}`,
          store.listPage("p:", options as unknown as ListPageOptions),
          {
            operation: "listPage",
            argument: "options"
          }
        )
      }
      for (const [label, prefix, reason] of badPrefixes) {
        yield* expectRefused(label, store.listPage(prefix as string, { limit: 3 }), {
          operation: "listPage",
          argument: "prefix",
          reason
        })
      }
    })
  },
  {
    id: "list-page-changes",
    name: "keys written or deleted between pages: no key twice, every key present throughout exactly once",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      const stable = Array.from({ length: 30 }, (_, i) => `k${String(i * 2).padStart(3, "0")}`)
      yield* store.setMany(stable.map((key) => [`c:${key}`, "v"]))
      const seen: Array<string> = []
      let cursor: string | null = null
      let round = 0
      do {
        const page: ListPage = yield* store.listPage("c:", { limit: 4, cursor })
        seen.push(...page.keys)
        cursor = page.cursor
        const last = page.keys[page.keys.length - 1] ?? "k000"
        // Behind the cursor, ahead of it, and right at it: none may make a key appear twice or vanish.
        yield* store.setMany([
          [`c:${last}a`, "ahead"],
          [`c:a${round}`, "behind"],
          [`c:${last.slice(0, -1)}`, "behind"],
          [`c:${last}`, "overwritten"]
        ])
        yield* store.delete(`c:${last}a`)
        yield* store.set(`c:z${round++}`, "ahead")
      } while (cursor !== null)
      assert.strictEqual(new Set(seen).size, seen.length, `no key twice: ${seen}`)
      for (const key of stable) assert.include(seen, key, "every key present throughout appears")
      assert.deepStrictEqual(seen, sorted(seen), "in list order")
    })
  },
  {
    id: "list-stream",
    name: "listStream streams the same keys as list, across many pages",
    timeout: 60_000,
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      const keys = Array.from({ length: 2500 }, (_, i) => `s:${i}`)
      for (let i = 0; i < keys.length; i += 1000) {
        yield* store.setMany(keys.slice(i, i + 1000).map((key) => [key, "v"]))
      }
      yield* store.setMany([["s", "not under s:"], ["t:1", "v"]])
      assert.deepStrictEqual(yield* Stream.runCollect(store.listStream("s:")), yield* store.list("s:"))
      assert.deepStrictEqual(yield* Stream.runCollect(store.listStream("none:")), [])
      assert.deepStrictEqual(
        yield* Stream.runCollect(Stream.take(store.listStream("s:"), 3)),
        (yield* store.list("s:")).slice(0, 3)
      )
      const error = yield* Effect.flip(Stream.runCollect(store.listStream(42 as unknown as string)))
      assert.isTrue(isKvInputError(error), "fails with KvInputError")
    })
  },
  {
    id: "lazy-new",
    name: "the atomic, batch and listing operations are lazy too",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      yield* store.set("ln:kept", "v")
      const setIfAbsent = store.setIfAbsent("ln:a", "v")
      const clear = store.clear("ln:")
      const unrun = [
        store.compareAndSet("ln:kept", "v", null),
        store.modify("ln:kept", () => null),
        store.setMany([["ln:b", "v"]]),
        store.deleteMany(["ln:kept"]),
        store.set("ln:c", "v", { ttl: 60_000 })
      ]
      const stream = store.listStream("ln:")
      assert.deepStrictEqual(yield* store.list("ln:"), ["kept"], "building wrote nothing")
      assert.lengthOf(unrun, 5)
      yield* store.set("ln:later", "v")
      assert.deepStrictEqual(yield* Stream.runCollect(stream), ["kept", "later"], "a stream reads when it runs")
      assert.strictEqual(yield* clear, 2, "a clear built earlier clears what is there when it runs")
      assert.isTrue(yield* setIfAbsent)
      assert.isFalse(yield* setIfAbsent, "running it again tries again")
      yield* store.delete("ln:a")
      assert.isTrue(yield* setIfAbsent)
    })
  }
]
