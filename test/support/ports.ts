/**
 * Free loopback ports for the servers the tests start, picked below the OS's ephemeral range.
 *
 * `listen(0)` and every outgoing connection draw their ports from the ephemeral range (32768–60999 on Linux). A port
 * found free there can be handed to another test's connection a moment later, and a server restarted on its own port
 * after a kill (the fault tests, the soak) then fails with `EADDRINUSE`: it did, in CI, now and then. Below the range
 * the OS never hands a port out by itself, so only another test picking the same one at random could take it.
 */
import * as fs from "node:fs"
import * as net from "node:net"

const HOST = "127.0.0.1"

/** The lowest port of the ephemeral range: Linux says; elsewhere, Linux's default. */
const EPHEMERAL_LOW = (() => {
  try {
    const low = Number(fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0])
    return Number.isInteger(low) && low > 20_000 ? low : 32_768
  } catch {
    return 32_768
  }
})()

/** Below the well-known services a developer's machine runs (PostgreSQL, Redis, brokers). */
const LOWEST = 10_000

/** A Redis Cluster node also binds its bus on port + 10000. */
const CLUSTER_BUS_OFFSET = 10_000

const canListen = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = net.createServer()
    server.once("error", () => resolve(false))
    server.listen({ host: HOST, port, exclusive: true }, () => server.close(() => resolve(true)))
  })

/** A port free on the loopback interface now (and, `withClusterBus`, its bus port too), below the ephemeral range. */
export const freePort = async (withClusterBus = false): Promise<number> => {
  const top = withClusterBus ? EPHEMERAL_LOW - CLUSTER_BUS_OFFSET : EPHEMERAL_LOW
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * (top - LOWEST))
    if (!(await canListen(port))) continue
    if (!withClusterBus || (await canListen(port + CLUSTER_BUS_OFFSET))) return port
  }
  throw new Error(`no free port between ${LOWEST} and ${top} in 200 tries`)
}
