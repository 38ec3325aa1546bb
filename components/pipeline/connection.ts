import * as pulumi from "@pulumi/pulumi";
import type { ConnectionSpec } from "../ingestion";
import { PORTS } from "../clickhouse/render";
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
    return pulumi
        .all([clickhouse.serviceName, clickhouse.credentialsSecretName])
        .apply(([service, secretName]): ConnectionSpec => {
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
                      username,
                      password,
                      ...kubeconfig,
                  }
                : {
                      kind: "port-forward",
                      namespace: args.namespace,
                      service,
                      port: PORTS.http,
                      username,
                      password,
                      ...kubeconfig,
                  };
        });
}
