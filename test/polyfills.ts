/**
 * Vitest 5 targets Node 22+. On Node 20 its reporter calls `Map.groupBy` while printing a failing test and crashes,
 * hiding the failure. `vitest.config.ts` loads this file in the main process and as a setup file in the workers.
 */
const polyfill = (target: object, name: string, value: unknown) => {
  if (!(name in target)) {
    Object.defineProperty(target, name, { value, writable: true, configurable: true })
  }
}

const groupBy = <K, V>(items: Iterable<V>, keyOf: (item: V, index: number) => K): Map<K, Array<V>> => {
  const groups = new Map<K, Array<V>>()
  let index = 0
  for (const item of items) {
    const key = keyOf(item, index++)
    const group = groups.get(key)
    if (group === undefined) groups.set(key, [item])
    else group.push(item)
  }
  return groups
}

polyfill(Map, "groupBy", groupBy)
polyfill(
  Object,
  "groupBy",
  <V>(items: Iterable<V>, keyOf: (item: V, index: number) => PropertyKey) =>
    Object.assign(Object.create(null), Object.fromEntries(groupBy(items, keyOf)))
)
polyfill(Promise, "withResolvers", <T>() => {
  let resolve!: (value: T | PromiseLike<T>) => void
  let reject!: (reason?: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
})

export {}
