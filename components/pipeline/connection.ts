import * as pulumi from "@pulumi/pulumi";
import type { ConnectionSpec } from "../ingestion";
import { PORTS, TLS_PORTS } from "../clickhouse/render";
import { TLS_SECRET_KEYS, tlsServerNames } from "../clickhouse/tls";
import { SECRET_KEYS } from "../../schemas/naming";

/** How the DDL provider reaches ClickHouse. */
export type IngestionConnection =
    /** A port-forward to a pod behind the ClickHouse client Service. */
    | { readonly kind: "port-forward" }
    /**
     * An HTTPS URL, without credentials; `http://` only with `allowInsecureHttp` (the password
     * then crosses the network in clear).
     */
    | { readonly kind: "url"; readonly url: string; readonly allowInsecureHttp?: boolean }
    /** The embedded engine, with its data folder (an absolute path). */
    | { readonly kind: "embedded"; readonly path: string };

export interface ConnectionArgs {
    readonly connection: IngestionConnection;
    /** The namespace of ClickHouse and its Secrets. */
    readonly namespace: string;
    /**
     * Connect as this user, its password in this Secret of the namespace (key `password`).
     * @default the admin user, its password from the ClickHouse credentials Secret
     */
    readonly user?: { readonly name: string; readonly passwordSecret: string };
    /** The kubeconfig file the provider reads the Secret through. @default $KUBECONFIG */
    readonly kubeconfigFile?: string;
}

/** The ClickHouse the DDL runs on: its client Service, its admin and their Secret. */
export interface ClickHouseTarget {
    readonly serviceName: pulumi.Output<string>;
    readonly credentialsSecretName: pulumi.Output<string>;
    readonly adminUser: string;
    /** With TLS on: the Secret holding `ca.crt`, and the name the certificate is made for. */
    readonly tls?: { readonly secretName: string; readonly serverName: pulumi.Output<string> };
}

/**
 * The connection the DDL provider is given. Passwords travel as references (a Kubernetes Secret),
 * resolved by the provider when it runs, so no input holds one.
 */
export function ingestionConnection(
    args: ConnectionArgs,
    clickhouse: ClickHouseTarget,
): pulumi.Input<ConnectionSpec> {
    const connection = args.connection;
    if (connection.kind === "embedded") return { kind: "embedded", path: connection.path };
    const kubeconfig = args.kubeconfigFile ? { kubeconfig: { fromFile: args.kubeconfigFile } } : {};
    const tls = clickhouse.tls;
    // The CA that issued ClickHouse's certificate: the Secret's ca.crt, read when the provider runs.
    const ca = tls && {
        fromKubernetesSecret: {
            namespace: args.namespace,
            name: tls.secretName,
            key: TLS_SECRET_KEYS.ca,
        },
    };
    return pulumi
        .all([clickhouse.serviceName, clickhouse.credentialsSecretName, tls?.serverName])
        .apply(([service, secretName, serverName]): ConnectionSpec => {
            // The Secret the ClickHouse pods read is the one source of the admin password; a
            // stack may name another user and its Secret instead (a read-only identity for previews).
            const user = args.user;
            const username = user ? user.name : clickhouse.adminUser;
            const password = {
                fromKubernetesSecret: {
                    namespace: args.namespace,
                    name: user ? user.passwordSecret : secretName,
                    key: user ? SECRET_KEYS.kafkaPassword : SECRET_KEYS.adminPassword,
                },
            };
            const insecure = connection.kind === "url" && connection.allowInsecureHttp === true;
            return connection.kind === "url"
                ? {
                      kind: "http",
                      url: connection.url,
                      ...(insecure ? { allowInsecureHttp: true } : {}),
                      // An https:// URL naming this stack's ClickHouse Service is verified with
                      // its CA; another name (an ingress, say) with the system's CAs.
                      ...(ca && ownService(connection.url, service, args.namespace) ? { ca } : {}),
                      username,
                      password,
                      ...kubeconfig,
                  }
                : {
                      kind: "port-forward",
                      namespace: args.namespace,
                      service,
                      ...(ca && serverName
                          ? { port: TLS_PORTS.https, tls: { ca, serverName } }
                          : { port: PORTS.http }),
                      username,
                      password,
                      ...kubeconfig,
                  };
        });
}

/** Whether `url` is https:// to a name the ClickHouse certificate is made for. */
function ownService(url: string, service: string, namespace: string): boolean {
    const u = new URL(url);
    return u.protocol === "https:" && tlsServerNames(service, namespace).includes(u.hostname);
}
