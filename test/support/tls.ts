/**
 * A throwaway certificate authority and certificates made with `openssl` for the TLS tests: a CA, a server
 * certificate for 127.0.0.1 and localhost, and a client certificate, in a temp dir that the scope deletes.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

export interface Certificates {
  readonly dir: string
  readonly caFile: string
  readonly serverCertFile: string
  readonly serverKeyFile: string
  readonly ca: string
  readonly clientCert: string
  readonly clientKey: string
}

const openssl = (cwd: string, args: ReadonlyArray<string>): Promise<void> =>
  new Promise((resolve, reject) =>
    execFile(
      "openssl",
      args,
      { cwd, timeout: 30_000 },
      (error, _stdout, stderr) =>
        error === null ? resolve() : reject(new Error(`openssl ${args.join(" ")} failed: ${stderr}`))
    )
  )

/** Scoped: a fresh CA and certificates signed by it, valid for a day. */
export const makeCertificates: Effect.Effect<Certificates, never, Scope.Scope> = Effect.acquireRelease(
  Effect.promise(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-kv-tls-"))
    const subj = (cn: string) => ["-subj", `/CN=${cn}`]
    await openssl(dir, [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-days",
      "1",
      ...subj("effect-kv test CA")
    ])
    for (
      const [name, ext] of [["server", "subjectAltName=IP:127.0.0.1,DNS:localhost"], [
        "client",
        "extendedKeyUsage=clientAuth"
      ]]
    ) {
      await openssl(dir, [
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        `${name}.key`,
        "-out",
        `${name}.csr`,
        ...subj(`effect-kv test ${name}`)
      ])
      fs.writeFileSync(path.join(dir, `${name}.ext`), `${ext}\n`)
      await openssl(dir, [
        "x509",
        "-req",
        "-in",
        `${name}.csr`,
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        `${name}.crt`,
        "-days",
        "1",
        "-extfile",
        `${name}.ext`
      ])
    }
    const read = (file: string) => fs.readFileSync(path.join(dir, file), "utf8")
    return {
      dir,
      caFile: path.join(dir, "ca.crt"),
      serverCertFile: path.join(dir, "server.crt"),
      serverKeyFile: path.join(dir, "server.key"),
      ca: read("ca.crt"),
      clientCert: read("client.crt"),
      clientKey: read("client.key")
    }
  }),
  ({ dir }) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** redis-server arguments for a TLS port beside the plain one (which the harness's own probes keep using). */
export const tlsArgs = (
  certificates: Certificates,
  tlsPort: number,
  options: { readonly cluster?: boolean; readonly clientCerts?: boolean } = {}
) => [
  ...["--tls-port", String(tlsPort)],
  ...["--tls-cert-file", certificates.serverCertFile, "--tls-key-file", certificates.serverKeyFile],
  ...["--tls-ca-cert-file", certificates.caFile, "--tls-auth-clients", options.clientCerts === true ? "yes" : "no"],
  ...(options.cluster === true ? ["--tls-cluster", "yes", "--tls-replication", "yes"] : [])
]
