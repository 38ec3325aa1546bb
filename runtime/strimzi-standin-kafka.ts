/**
 * The stand-in's cluster operator: Kafka and KafkaNodePool statuses for the one local broker (its
 * clusterId, node ids per pool, listener addresses) and the cluster CA Secret.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SECRET_KEYS } from "../schemas/naming";
import { StandInContext, now, ownerReference } from "./strimzi-standin-common";
import {
    CustomResource,
    assignNodeIds,
    kafkaCreatingStatus,
    kafkaFailedStatus,
    kafkaReadyStatus,
    nodePoolStatus,
} from "./strimzi-status";

export class ClusterOperator {
    private readonly caDir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-strimzi-ca-"));
    private readonly caCerts = new Map<string, string>();

    constructor(private readonly ctx: StandInContext) {}

    async reconcile(kafka: CustomResource, allPools: readonly CustomResource[]): Promise<void> {
        const { kube, admin } = this.ctx;
        if (kafka.metadata.deletionTimestamp) return;
        if (!kafka.status) await kube.writeStatus("Kafka", kafka, kafkaCreatingStatus(now()));
        const pools = allPools.filter(
            (p) =>
                p.metadata.namespace === kafka.metadata.namespace &&
                p.metadata.labels?.["strimzi.io/cluster"] === kafka.metadata.name &&
                !p.metadata.deletionTimestamp,
        );
        if (pools.length === 0) {
            await kube.writeStatus(
                "Kafka",
                kafka,
                kafkaFailedStatus(
                    kafka,
                    "InvalidConfigurationException",
                    `No KafkaNodePools found for Kafka cluster ${kafka.metadata.name}`,
                    now(),
                ),
            );
            return;
        }
        const clusterId = (await admin.metadata({ topics: [] })).id;
        const ids = assignNodeIds(pools);
        for (const pool of pools) {
            await kube.writeStatus(
                "KafkaNodePool",
                pool,
                nodePoolStatus({
                    pool,
                    cluster: kafka.metadata.name,
                    nodeIds: ids.get(pool.metadata.name)!,
                    clusterId,
                }),
            );
        }
        const caCertificate = await this.clusterCa(kafka);
        await kube.writeStatus(
            "Kafka",
            kafka,
            kafkaReadyStatus({ kafka, pools, clusterId, caCertificate, now: now() }),
        );
    }

    /** Removes the CA files; the Secrets stay with their Kafka CR. */
    close(): void {
        fs.rmSync(this.caDir, { recursive: true, force: true });
    }

    /** The cluster's CA certificate: the one its Secret holds, or a new one; the Secret is kept. */
    private async clusterCa(kafka: CustomResource): Promise<string> {
        const { kube } = this.ctx;
        const key = `${kafka.metadata.namespace}/${kafka.metadata.name}/${kafka.metadata.uid}`;
        let pem = this.caCerts.get(key);
        if (!pem) {
            const existing = await kube.readSecret(
                kafka.metadata.namespace,
                `${kafka.metadata.name}-cluster-ca-cert`,
            );
            const stored = existing?.data?.[SECRET_KEYS.caCertificate];
            pem = stored
                ? Buffer.from(stored, "base64").toString()
                : await newCaCertificate(this.caDir);
            this.caCerts.set(key, pem);
        }
        await kube.upsertSecret(kafka.metadata.namespace, {
            metadata: {
                name: `${kafka.metadata.name}-cluster-ca-cert`,
                namespace: kafka.metadata.namespace,
                labels: {
                    "strimzi.io/cluster": kafka.metadata.name,
                    "strimzi.io/kind": "Kafka",
                    "strimzi.io/component-type": "certificate-authority",
                },
                ownerReferences: [ownerReference(kafka, "Kafka")],
            },
            type: "Opaque",
            data: { [SECRET_KEYS.caCertificate]: Buffer.from(pem).toString("base64") },
        });
        return pem;
    }
}

/** A self-signed cluster CA certificate (PEM), as the operator makes one per cluster. */
function newCaCertificate(dir: string): Promise<string> {
    const key = path.join(dir, `${randomBytes(4).toString("hex")}.key`);
    const crt = `${key}.crt`;
    return new Promise((resolve, reject) => {
        execFile(
            "openssl",
            [
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                key,
                "-out",
                crt,
                "-days",
                "365",
                "-subj",
                "/O=io.strimzi/CN=cluster-ca v0",
            ],
            { timeout: 30_000 },
            (err) => {
                if (err)
                    reject(
                        new Error(
                            `openssl could not make the cluster CA (install openssl): ${err.message}`,
                        ),
                    );
                else resolve(fs.readFileSync(crt, "utf8"));
            },
        );
    });
}
