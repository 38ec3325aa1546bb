/**
 * Stack config keys for network access: who may reach ClickHouse and the Kafka listeners, and
 * where ClickHouse may reach external brokers (NetworkPolicies; see
 * components/clickhouse/network-policy.ts). Part of the one schema in `config.ts`, kept here so
 * that file stays within its size limit.
 */
import { z } from "zod";
import { parseBootstrap } from "../components/clickhouse/network-policy";

/** A namespace name (a DNS label). */
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** A Kubernetes label key (`[prefix/]name`) and value. */
const LABEL_KEY =
    /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/** Pods in a namespace, with labels: one entry of clickhouseClients or kafkaProducers. */
const networkPeer = z
    .object({
        namespace: z.string().regex(NAMESPACE, "namespace must be a namespace name").optional(),
        podLabels: z
            .record(
                z.string().regex(LABEL_KEY, "podLabels: each key must be a Kubernetes label key"),
                z
                    .string()
                    .regex(LABEL_VALUE, "podLabels: each value must be a Kubernetes label value"),
            )
            .optional(),
    })
    .strict()
    .refine((p) => p.namespace !== undefined || Object.keys(p.podLabels ?? {}).length > 0, {
        message:
            "each entry needs a namespace, podLabels or both (an empty one would admit every pod)",
    });

const EXAMPLE = '[{"namespace":"apps","podLabels":{"app":"dashboard"}}]';

/**
 * A list of network peers. Pulumi's project config declares no object types, so the value is a
 * JSON string, e.g. `[{"namespace":"apps","podLabels":{"app":"dashboard"}}]`.
 */
function peerList(description: string) {
    return z
        .string()
        .default("[]")
        .pipe(
            z.transform((text: string, ctx) => {
                try {
                    return JSON.parse(text) as unknown;
                } catch {
                    ctx.issues.push({
                        code: "custom",
                        input: text,
                        message: `must be a JSON list such as ${EXAMPLE}`,
                    });
                    return z.NEVER;
                }
            }),
        )
        .pipe(z.array(networkPeer))
        .describe(description);
}

export const NETWORK_KEYS = {
    clickhouseClients: peerList(
        `Pods allowed to connect to ClickHouse on its listener ports (NetworkPolicy), a JSON list of {namespace?, podLabels?} such as ${EXAMPLE}; a namespace alone admits all its pods, labels alone those of the stack's namespace. Empty: only port-forward (the DDL provider's default path) and the kubelet reach it.`,
    ),
    kafkaProducers: peerList(
        `Strimzi mode: pods allowed to reach the Kafka listeners besides ClickHouse (each listener's networkPolicyPeers), a JSON list like clickhouseClients.`,
    ),
    kafkaExternalCidrs: z
        .string()
        .default("")
        .refine(
            (v) =>
                v === "" || v.split(",").every((c) => /^[0-9a-fA-F.:]+\/\d{1,3}$/.test(c.trim())),
            { message: "must be a comma-separated list of CIDRs such as 10.20.0.0/16" },
        )
        .describe(
            "External mode: the brokers' networks (comma-separated CIDRs) ClickHouse may reach on the bootstrap ports; empty: the bootstrap's IPs, or any address when it names hosts (a NetworkPolicy cannot select by name).",
        ),
};

/** The keys the cross-key checks read (a structural type: `config.ts` imports this module). */
interface NetworkConfig {
    readonly kafkaMode: string;
    readonly kafkaExternalBootstrap: string;
}

/** The external bootstrap must parse: ClickHouse's egress rule is made from its ports. */
export function networkProblems(cfg: NetworkConfig, project: string): string[] {
    if (cfg.kafkaMode !== "external" || cfg.kafkaExternalBootstrap === "") return [];
    try {
        parseBootstrap(cfg.kafkaExternalBootstrap);
        return [];
    } catch (e) {
        return [`${project}:kafkaExternalBootstrap: ${(e as Error).message}`];
    }
}

/** kafkaExternalCidrs as a list. */
export function externalCidrs(value: string): string[] {
    return value
        .split(",")
        .map((c) => c.trim())
        .filter((c) => c !== "");
}
