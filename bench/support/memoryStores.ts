/**
 * The in-memory contenders behind one shape: the four operations of the effect-kv contract, each returning what the
 * store natively returns (a value, an Effect or a Promise), plus a cheap `count` for the benchmark's own checks.
 *
 * Every `list` returns what the contract asks for (the keys under the prefix, prefix removed, sorted), so the rows
 * compare equal work. The stores without an ordered index get it the way their users would write it: a full scan.
 */
import { invalidKey, invalidValue, isValidKey, isValidValue, makeMemoryBaseKvStore } from "effect-kv"
import * as Effect from "effect/Effect"
import * as KeyValueStore from "effect/persistence/KeyValueStore"
import Keyv from "keyv"
import SortedBTree from "sorted-btree"
import { createStorage } from "unstorage"
import memoryDriver from "unstorage/drivers/memory"

// sorted-btree is CommonJS with `exports.default = BTree`; Node's ESM loader hands over `module.exports`.
const BTree = SortedBTree.default ?? (SortedBTree as unknown as typeof SortedBTree.default)

export interface StoreOps<X> {
  readonly get: (key: string) => X
  readonly set: (key: string, value: string) => X
  readonly delete: (key: string) => X
  readonly list: (prefix: string) => X
}

interface Common {
  readonly name: MemoryStoreName
  /** Number of keys, read without going through the measured API. */
  readonly count: () => number
  /** Only `list` is meaningful (the raw index reference row). */
  readonly listOnly: boolean
}

export type MemoryStore =
  | Common & { readonly kind: "sync"; readonly ops: StoreOps<unknown> }
  | Common & { readonly kind: "effect"; readonly ops: StoreOps<Effect.Effect<unknown, unknown>> }
  | Common & { readonly kind: "promise"; readonly ops: StoreOps<Promise<unknown>> }

export const MEMORY_STORES = ["map", "effect-kv", "layerMemory", "keyv", "unstorage", "sorted-btree"] as const
export type MemoryStoreName = typeof MEMORY_STORES[number]

export const isMemoryStoreName = (name: string): name is MemoryStoreName =>
  (MEMORY_STORES as ReadonlyArray<string>).includes(name)

/** The full-scan listing every store without an ordered index needs: filter, strip, sort. */
export const scanList = (keys: Iterable<string>, prefix: string): Array<string> => {
  const found: Array<string> = []
  for (const key of keys) if (key.startsWith(prefix)) found.push(key.slice(prefix.length))
  return found.sort()
}

const map = (): MemoryStore => {
  const values = new Map<string, string>()
  return {
    name: "map",
    kind: "sync",
    listOnly: false,
    count: () => values.size,
    ops: {
      get: (key) => values.get(key),
      set: (key, value) => values.set(key, value),
      delete: (key) => values.delete(key),
      list: (prefix) => scanList(values.keys(), prefix)
    }
  }
}

const effectKv = (): MemoryStore => {
  const store = makeMemoryBaseKvStore()
  return {
    name: "effect-kv",
    kind: "effect",
    listOnly: false,
    // Counting through the store's own list("") is O(n) but runs only in the checks.
    count: () => Effect.runSync(store.list("")).length,
    ops: { get: store.get, set: store.set, delete: store.delete, list: store.list }
  }
}

/** A fresh `KeyValueStore.layerMemory`, as a program gets it. */
export const effectLayerMemory = (): KeyValueStore.KeyValueStore =>
  Effect.runSync(Effect.provide(KeyValueStore.KeyValueStore, KeyValueStore.layerMemory))

const layerMemory = (): MemoryStore => {
  const store = effectLayerMemory()
  return {
    name: "layerMemory",
    kind: "effect",
    listOnly: false,
    count: () => Effect.runSync(store.size),
    ops: {
      get: store.get,
      set: store.set,
      delete: store.remove,
      list: (prefix) => Effect.map(store.keys, (keys) => scanList(keys, prefix))
    }
  }
}

/**
 * Effect's `layerMemory` behind effect-kv's input checks (`isValidKey`, `isValidValue`) and nothing else: what any
 * store that keeps effect-kv's rules pays over `layerMemory`, so that the rest of effect-kv's cost reads apart from
 * the rules'.
 */
export const checkedKeyValueStore = (store: KeyValueStore.KeyValueStore) => ({
  get: (key: string) => isValidKey(key) ? store.get(key) : Effect.fail(invalidKey("get", key)),
  set: (key: string, value: string) =>
    !isValidKey(key)
      ? Effect.fail(invalidKey("set", key))
      : !isValidValue(value)
      ? Effect.fail(invalidValue(key, value))
      : store.set(key, value)
})

const keyv = (): MemoryStore => {
  const backing = new Map<string, unknown>()
  const store = new Keyv<string>({ store: backing })
  return {
    name: "keyv",
    kind: "promise",
    listOnly: false,
    count: () => backing.size,
    ops: {
      get: (key) => store.get(key),
      set: (key, value) => store.set(key, value),
      delete: (key) => store.delete(key),
      // Keyv has no prefix listing: its iterator walks (and deserializes) every entry.
      list: async (prefix) => {
        const found: Array<string> = []
        if (store.iterator === undefined) throw new Error("Keyv's Map store has no iterator")
        for await (const [key] of store.iterator(undefined)) {
          if (typeof key === "string" && key.startsWith(prefix)) found.push(key.slice(prefix.length))
        }
        return found.sort()
      }
    }
  }
}

const unstorage = (): MemoryStore => {
  const driver = memoryDriver(undefined)
  const storage = createStorage<string>({ driver })
  const backing = driver.getInstance?.() as Map<string, unknown>
  return {
    name: "unstorage",
    kind: "promise",
    listOnly: false,
    count: () => backing.size,
    ops: {
      get: (key) => storage.getItem(key),
      set: (key, value) => storage.setItem(key, value),
      delete: (key) => storage.removeItem(key),
      // getKeys copies every key of the driver and filters them; unstorage keys are already normalised like ours.
      list: async (prefix) => (await storage.getKeys(prefix)).map((key) => key.slice(prefix.length)).sort()
    }
  }
}

const sortedBTree = (): MemoryStore => {
  const tree = new BTree<string, string>()
  return {
    name: "sorted-btree",
    kind: "sync",
    listOnly: true,
    count: () => tree.size,
    ops: {
      get: (key) => tree.get(key),
      set: (key, value) => tree.set(key, value),
      delete: (key) => tree.delete(key),
      // The same range read effect-kv's memory store does, without Effect or the input checks around it.
      list: (prefix) => {
        const found: Array<string> = []
        for (const key of tree.keys(prefix)) {
          if (!key.startsWith(prefix)) break
          found.push(key.slice(prefix.length))
        }
        return found
      }
    }
  }
}

export const makeMemoryStore = (name: MemoryStoreName): MemoryStore => {
  switch (name) {
    case "map":
      return map()
    case "effect-kv":
      return effectKv()
    case "layerMemory":
      return layerMemory()
    case "keyv":
      return keyv()
    case "unstorage":
      return unstorage()
    case "sorted-btree":
      return sortedBTree()
  }
}

/** Display names, as the tables use them. */
export const memoryStoreLabel: Record<MemoryStoreName, string> = {
  "map": "Map (floor)",
  "effect-kv": "effect-kv memory",
  "layerMemory": "Effect KeyValueStore.layerMemory",
  "keyv": "Keyv (default Map store)",
  "unstorage": "unstorage memory driver",
  "sorted-btree": "sorted-btree range read (reference)"
}
