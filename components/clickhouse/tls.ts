/**
 * TLS on ClickHouse's listeners: where the certificate comes from, the names it is made for, the
 * cert-manager `Certificate` when cert-manager issues it, and the listener ports and probe scheme
 * that follow from it. Pure builders, like `manifests.ts`.
 *
 * With TLS on, ClickHouse opens HTTPS (8443) and secure native (9440) and closes plain HTTP and
 * native: left open, any client (or a misconfigured one) could still send the password in clear
 * across the pod network, which is what TLS is there to prevent. The kubelet's probes use HTTPS
 * (it does not verify the certificate, as Kubernetes documents for HTTPS probes), and the Kafka
 * engine needs no ClickHouse port.
 */
import type * as k8s from "@pulumi/kubernetes";
import { PORTS, TLS_PORTS } from "./render";

/** The keys of a TLS Secret the pods and the DDL provider read. */
export const TLS_SECRET_KEYS = { cert: "tls.crt", key: "tls.key", ca: "ca.crt" } as const;

/** Where the server certificate comes from, when ClickHouse speaks TLS. */
export type ClickHouseTls =
    /** A Secret in the namespace with tls.crt, tls.key and ca.crt (e.g. kubernetes.io/tls). */
    | { readonly source: "secret"; readonly secretName: string }
    /** A cert-manager Certificate this component creates; cert-manager writes the Secret. */
    | {
          readonly source: "cert-manager";
          /** The Secret cert-manager writes. @default `<name>-tls` */
          readonly secretName?: string;
          /** A CA issuer (its Secrets carry ca.crt, which the DDL provider verifies with). */
          readonly issuer: { readonly name: string; readonly kind: "Issuer" | "ClusterIssuer" };
      };

/** The Secret holding the certificate, key and CA. */
export function tlsSecretName(name: string, tls: ClickHouseTls): string {
    return tls.secretName ?? `${name}-tls`;
}

/**
 * The DNS names the certificate is made for: the client Service in each form a client may use,
 * and every pod behind the headless Service.
 */
export function tlsServerNames(name: string, namespace: string): string[] {
    const svc = `${name}.${namespace}.svc`;
    const pods = `*.${name}-headless.${namespace}.svc`;
    return [
        name,
        `${name}.${namespace}`,
        svc,
        `${svc}.cluster.local`,
        pods,
        `${pods}.cluster.local`,
    ];
}

/** The name the DDL provider checks the certificate against: the client Service's. */
export function tlsServerName(name: string, namespace: string): string {
    return `${name}.${namespace}.svc`;
}

/** A ClickHouse listener: its port name (Service and container) and number. */
export interface Listener {
    readonly name: string;
    readonly port: number;
}

/** The HTTP(S) and native listeners, TLS or plain. */
export function listeners(tls: boolean): { readonly http: Listener; readonly native: Listener } {
    return tls
        ? {
              http: { name: "https", port: TLS_PORTS.https },
              native: { name: "native-tls", port: TLS_PORTS.nativeSecure },
          }
        : {
              http: { name: "http", port: PORTS.http },
              native: { name: "native", port: PORTS.native },
          };
}

/**
 * The cert-manager Certificate: an ECDSA P-256 key made anew at each renewal, 90 days, renewed 15
 * days before expiry. ClickHouse reloads the mounted files when the Secret changes.
 */
export function certificate(
    metadata: { readonly name: string; readonly namespace: string; labels: Record<string, string> },
    tls: Extract<ClickHouseTls, { source: "cert-manager" }>,
    clickhouseName: string,
): k8s.apiextensions.CustomResourceArgs {
    return {
        apiVersion: "cert-manager.io/v1",
        kind: "Certificate",
        metadata,
        spec: {
            secretName: tlsSecretName(clickhouseName, tls),
            secretTemplate: { labels: metadata.labels },
            commonName: tlsServerName(clickhouseName, metadata.namespace),
            dnsNames: tlsServerNames(clickhouseName, metadata.namespace),
            issuerRef: { name: tls.issuer.name, kind: tls.issuer.kind, group: "cert-manager.io" },
            privateKey: { algorithm: "ECDSA", size: 256, rotationPolicy: "Always" },
            usages: ["server auth", "digital signature"],
            duration: "2160h",
            renewBefore: "360h",
        },
    };
}
