import type { StackConfig } from "./config";

/**
 * What `pulumi destroy` of this stack deletes and what it keeps, from its config. Exported as
 * the `onDestroy` stack output, so `pulumi preview` and `pulumi stack output` show it before
 * anyone runs destroy.
 */
export interface DestroyImpact {
    /** Set when protectData stops destroy before anything that holds data. */
    readonly blockedBy?: string;
    readonly deleted: string[];
    readonly kept: string[];
}

export function destroyImpact(config: StackConfig): DestroyImpact {
    const deleted: string[] = [];
    const kept: string[] = [];
    const clickhouseData = config.clickhouseEphemeralStorage
        ? "ClickHouse data (emptyDir: it goes with the pod)"
        : "ClickHouse data volumes (PVCs)";

    if (config.createNamespace) {
        deleted.push(
            `namespace ${config.namespace} and everything in it, ${clickhouseData} and the Kafka volumes included: ` +
                "deleting a namespace ignores PVC retention policies and Strimzi's deleteClaim: false",
        );
    } else if (config.clickhouseEphemeralStorage) {
        deleted.push(clickhouseData);
    } else if (config.clickhouseVolumeRetention === "Delete") {
        deleted.push(`${clickhouseData} (clickhouseVolumeRetention: Delete)`);
    } else {
        kept.push(
            `${clickhouseData}: persistentVolumeClaimRetentionPolicy Retain; a new StatefulSet of the same name reattaches them`,
        );
    }
    if (config.kafkaMode === "strimzi") {
        deleted.push(
            "Kafka topics and their messages: the Topic Operator deletes a topic with its KafkaTopic",
        );
        if (!config.createNamespace && !config.kafkaEphemeralStorage) {
            kept.push("Kafka volumes (node pools use deleteClaim: false)");
        }
    } else {
        deleted.push("Kafka topics and their messages on the external cluster (@pulumi/kafka)");
    }
    if (config.ingestionEnabled) {
        deleted.push("ClickHouse Kafka tables and materialized views of every stream");
        const tables = "target and dead-letter tables";
        if (config.dropTargetOnDelete) deleted.push(`${tables} (dropTargetOnDelete: true)`);
        else if (config.createNamespace || config.clickhouseEphemeralStorage)
            deleted.push(
                `${tables}: not dropped (dropTargetOnDelete: false), but they live on the data that goes with the namespace`,
            );
        else kept.push(`${tables} (dropTargetOnDelete: false)`);
    }
    if (config.strimziInstall)
        kept.push("Strimzi CRDs (retainOnDelete: other stacks may use them)");
    return {
        ...(config.protectData
            ? {
                  blockedBy:
                      "protectData: true protects the namespace, the Kafka cluster, its pools and topics and the ClickHouse StatefulSet; destroy stops at them until protectData is set to false and applied",
              }
            : {}),
        deleted,
        kept,
    };
}
