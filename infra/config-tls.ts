/**
 * Stack config keys for transport security: TLS on ClickHouse's listeners, and whether the DDL
 * provider may reach ClickHouse over plain http://. Part of the one schema in `config.ts`, kept
 * here so that file stays within its size limit.
 */
import { z } from "zod";

/** A Kubernetes object name, or empty. */
const optionalName = z
    .string()
    .regex(/^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)?$/, "must be a Kubernetes object name");

export const TRANSPORT_SECURITY_KEYS = {
    clickhouseTls: z
        .enum(["off", "secret", "cert-manager"])
        .default("off")
        .describe(
            "TLS for ClickHouse HTTPS (8443) and secure native (9440), the plain ports closed: off; secret: the certificate from clickhouseTlsSecret; cert-manager: a Certificate issued by clickhouseTlsIssuer.",
        ),
    clickhouseTlsSecret: optionalName
        .default("")
        .describe(
            "TLS Secret in the namespace with tls.crt, tls.key and ca.crt: required when clickhouseTls is 'secret'; with 'cert-manager' the Secret the Certificate writes (empty: <clickhouseName>-tls).",
        ),
    clickhouseTlsIssuer: optionalName
        .default("")
        .describe(
            "cert-manager issuer of the ClickHouse certificate (a CA issuer, so the Secret carries ca.crt): required when clickhouseTls is 'cert-manager'.",
        ),
    clickhouseTlsIssuerKind: z
        .enum(["Issuer", "ClusterIssuer"])
        .default("ClusterIssuer")
        .describe("Kind of clickhouseTlsIssuer: a ClusterIssuer, or an Issuer in the namespace."),
    ingestionAllowInsecureHttp: z
        .boolean()
        .default(false)
        .describe(
            "url mode: accept an http:// ingestionUrl, the password and queries crossing the network in clear (a server on loopback, or behind a tunnel that encrypts).",
        ),
};

/** The keys the cross-key checks read (a structural type: `config.ts` imports this module). */
interface TransportSecurityConfig {
    readonly ingestionEnabled: boolean;
    readonly ingestionConnection: string;
    readonly ingestionUrl: string;
    readonly ingestionAllowInsecureHttp: boolean;
    readonly clickhouseTls: "off" | "secret" | "cert-manager";
    readonly clickhouseTlsSecret: string;
    readonly clickhouseTlsIssuer: string;
}

/** Combinations of these keys that cannot work, or that would send a password in clear. */
export function transportSecurityProblems(cfg: TransportSecurityConfig, project: string): string[] {
    const p: string[] = [];
    if (
        cfg.ingestionEnabled &&
        cfg.ingestionConnection === "url" &&
        /^http:/i.test(cfg.ingestionUrl) &&
        !cfg.ingestionAllowInsecureHttp
    ) {
        p.push(
            `${project}:ingestionUrl: ${cfg.ingestionUrl} is plain http://, so the password and every query cross the network unencrypted; use https:// (and clickhouseTls), or set ingestionAllowInsecureHttp to true to accept that`,
        );
    }
    if (cfg.clickhouseTls === "secret" && cfg.clickhouseTlsSecret === "") {
        p.push(
            `${project}:clickhouseTlsSecret: required when clickhouseTls is 'secret' (a Secret in the namespace with tls.crt, tls.key and ca.crt)`,
        );
    }
    if (cfg.clickhouseTls === "cert-manager" && cfg.clickhouseTlsIssuer === "") {
        p.push(
            `${project}:clickhouseTlsIssuer: required when clickhouseTls is 'cert-manager' (the name of a cert-manager CA issuer; its kind in clickhouseTlsIssuerKind)`,
        );
    }
    return p;
}
