/**
 * TLS for the provider's ClickHouse connections: one handshake up front, with the CA and server
 * name the client itself is given, so a certificate the CA did not sign, or one made for another
 * name, fails when the connection is opened with a message that says so, rather than later as a
 * bare OpenSSL code from the first query.
 */
import * as net from "node:net";
import * as tls from "node:tls";
import { ConnectionError } from "./connection-errors";

/** What a handshake checks: where it connects, the name the certificate must carry, the CA. */
export interface TlsTarget {
    readonly host: string;
    readonly port: number;
    /** The name the server's certificate must be made for. @default host */
    readonly serverName?: string;
    /** PEM of the CA(s) to trust; undefined: the system's CAs. */
    readonly ca?: Buffer;
    /** Where the CA came from, for messages (e.g. `connection.ca { fromFile: ... }`). */
    readonly caDescription: string;
    /** Where the connection points, for messages. */
    readonly describe: string;
    /** Give up waiting (and leave the reporting to the client's first request) after this long. */
    readonly timeoutMs: number;
}

/**
 * OpenSSL's and Node's codes for a certificate that does not verify: not signed by the CA, a
 * chain with a missing link, expired or not yet valid, or made for another name.
 */
const VERIFY_CODES = new Set([
    "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    "UNABLE_TO_GET_ISSUER_CERT",
    "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
    "SELF_SIGNED_CERT_IN_CHAIN",
    "DEPTH_ZERO_SELF_SIGNED_CERT",
    "CERT_SIGNATURE_FAILURE",
    "CERT_UNTRUSTED",
    "CERT_REJECTED",
    "CERT_HAS_EXPIRED",
    "CERT_NOT_YET_VALID",
    "INVALID_CA",
    "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** The error of a certificate that failed verification, phrased with what to check; else undefined. */
export function certificateError(e: unknown, target: TlsTarget): ConnectionError | undefined {
    const code = (e as { code?: unknown } | null)?.code;
    if (typeof code !== "string" || !VERIFY_CODES.has(code)) return undefined;
    const reason = e instanceof Error ? e.message : String(e);
    const name = target.serverName ?? target.host;
    const fix =
        code === "ERR_TLS_CERT_ALTNAME_INVALID"
            ? `the certificate is not made for '${name}': issue it for that name (dnsNames), or connect by a name it carries`
            : `check that ${target.caDescription} is the CA that issued the server's certificate (its ca.crt), and that the certificate is current`;
    return new ConnectionError(
        `TLS: the certificate of ${target.describe} failed CA verification (${code}: ${reason}); ${fix}`,
        { cause: e },
    );
}

/**
 * One TLS handshake with the server, verifying its certificate against `ca` and `serverName`.
 * Throws a `ConnectionError` when the certificate does not verify. Any other failure (refused,
 * unreachable, timed out) is left to the client's first request, which reports it as before.
 */
export async function verifyServerCertificate(target: TlsTarget): Promise<void> {
    const failure = await new Promise<unknown>((resolve) => {
        const socket = tls.connect({
            host: target.host,
            port: target.port,
            ...serverIdentity(target.serverName ?? target.host),
            ...(target.ca ? { ca: target.ca } : {}),
            rejectUnauthorized: true,
            ALPNProtocols: ["http/1.1"],
        });
        const done = (result: unknown) => {
            socket.destroy();
            resolve(result);
        };
        socket.setTimeout(target.timeoutMs, () => done(undefined));
        socket.once("secureConnect", () => done(undefined));
        socket.once("error", done);
    });
    const error = certificateError(failure, target);
    if (error) throw error;
}

/**
 * TLS options that verify the certificate against `name` whatever address the socket connects to
 * (a port-forward connects to 127.0.0.1 but the certificate is made for the Service's name). SNI
 * carries host names only, so an IP address is checked without being sent.
 */
export function serverIdentity(name: string): tls.ConnectionOptions {
    return {
        ...(net.isIP(name) ? {} : { servername: name }),
        checkServerIdentity: (_host, cert) => tls.checkServerIdentity(name, cert),
    };
}
