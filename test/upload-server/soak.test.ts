/**
 * The short fault soak (`npm run soak -- --short`, see bench/soak/scenario.ts): two `npm start` instances on one
 * Redis, tus-js-client uploads, an instance killed and restarted, Redis killed and restarted, an instance paused, each
 * while PATCHes are in flight. Every upload must finish byte for byte, none may start again from zero, no request may
 * be answered 5xx, and nothing may be left behind.
 */
import { describe, expect, it } from "@effect/vitest"
import { runSoak, SHORT } from "../../bench/soak/scenario.ts"
import { canKillServers } from "../support/fixtures.ts"

describe.skipIf(!canKillServers)("the short fault soak", () => {
  it("loses nothing: every upload intact, no restart from zero, no 5xx, no orphans", async () => {
    const result = await runSoak(SHORT)
    expect(result.errors).toEqual([])
    expect(result.faults).toHaveLength(3)
    expect(result.intact).toBe(result.uploads)
    expect(result.restartsFromZero).toBe(0)
    expect(result.serverErrors).toBe(0)
    expect(result.orphans).toBe(0)
  }, 90_000)
})
