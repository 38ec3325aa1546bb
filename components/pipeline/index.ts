/** The whole pipeline as one component, for the stack program (infra/) and any other program. */
export { KafkaClickHousePipeline } from "./pipeline";
export type {
    ExternalKafka,
    PipelineArgs,
    PipelineClickHouse,
    PipelineIngestion,
    StrimziKafka,
} from "./pipeline";
export { ingestionConnection } from "./connection";
export type { ClickHouseTarget, ConnectionArgs, IngestionConnection } from "./connection";
