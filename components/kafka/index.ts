export { KafkaCluster, KafkaClusterArgs } from "./cluster";
export { ExternalKafkaTopics, ExternalKafkaArgs } from "./external";
export * from "./endpoint";
export {
    StrimziOperator,
    StrimziOperatorArgs,
    STRIMZI_CHART,
    crdFiles,
    strimziCrdUrl,
} from "./operator";
export * from "./manifests";
