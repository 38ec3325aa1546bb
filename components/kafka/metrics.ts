/**
 * What the Kafka cluster exposes to Prometheus when `kafkaMetrics` is on: the JMX exporter rules
 * Strimzi loads into each broker and controller (`spec.kafka.metricsConfig`), and the Kafka
 * Exporter deployment (`spec.kafkaExporter`) for consumer-group lag and topic offsets, which JMX
 * does not show. test/integration/kafka-metrics.test.ts loads these rules into the real JMX
 * exporter agent on a real broker and checks the series below appear.
 */
import { stringify } from "yaml";

interface Rule {
    readonly pattern: string;
    readonly name: string;
    readonly type: "COUNTER" | "GAUGE";
    readonly labels?: Readonly<Record<string, string>>;
}

const counter = (pattern: string, name: string, labels?: Rule["labels"]): Rule => ({
    pattern,
    name,
    type: "COUNTER",
    ...(labels ? { labels } : {}),
});
const gauge = (pattern: string, name: string, labels?: Rule["labels"]): Rule => ({
    pattern,
    name,
    type: "GAUGE",
    ...(labels ? { labels } : {}),
});

/**
 * The rules, most specific first (the exporter uses the first rule that matches an MBean
 * attribute). A `[^,]+` group never spans a second MBean property, so a rule written for
 * `type=X, name=Y` cannot swallow per-client or per-topic variants of the same bean.
 */
export const JMX_RULES: readonly Rule[] = [
    // Throughput and errors, per topic and broker-wide (MessagesIn, BytesIn, BytesOut,
    // FailedProduceRequests, TotalFetchRequests, ...).
    counter(
        "kafka.server<type=BrokerTopicMetrics, name=([^,]+)PerSec, topic=([^,]+)><>Count",
        "kafka_server_brokertopicmetrics_$1_total",
        { topic: "$2" },
    ),
    counter(
        "kafka.server<type=BrokerTopicMetrics, name=([^,]+)PerSec><>Count",
        "kafka_server_brokertopicmetrics_$1_total",
    ),
    // Replication health: under-replicated and under-min-ISR partitions, leaders, ISR churn.
    counter(
        "kafka.server<type=ReplicaManager, name=([^,]+)PerSec><>Count",
        "kafka_server_replicamanager_$1_total",
    ),
    gauge(
        "kafka.server<type=ReplicaManager, name=([^,]+)><>Value",
        "kafka_server_replicamanager_$1",
    ),
    // Per partition: replication state (kafka.cluster Partition) and log size on disk (kafka.log Log).
    gauge(
        "kafka.(cluster|log)<type=(Partition|Log), name=([^,]+), topic=([^,]+), partition=([^,]+)><>Value",
        "kafka_$1_$2_$3",
        { topic: "$4", partition: "$5" },
    ),
    // Flush latency.
    gauge(
        "kafka.log<type=LogFlushStats, name=LogFlushRateAndTimeMs><>(\\d+)thPercentile",
        "kafka_log_logflushstats_time_ms",
        { percentile: "$1" },
    ),
    // Requests: rate per API and version, time per API (percentiles), queue and idle ratios.
    counter(
        "kafka.network<type=RequestMetrics, name=RequestsPerSec, request=([^,]+), version=([^,]+)><>Count",
        "kafka_network_requestmetrics_requests_total",
        { request: "$1", version: "$2" },
    ),
    gauge(
        "kafka.network<type=RequestMetrics, name=([^,]+)TimeMs, request=([^,]+)><>(\\d+)thPercentile",
        "kafka_network_requestmetrics_$1_time_ms",
        { request: "$2", percentile: "$3" },
    ),
    counter(
        "kafka.network<type=RequestMetrics, name=ErrorsPerSec, request=([^,]+), error=([^,]+)><>Count",
        "kafka_network_requestmetrics_errors_total",
        { request: "$1", error: "$2" },
    ),
    gauge(
        "kafka.network<type=SocketServer, name=NetworkProcessorAvgIdlePercent><>Value",
        "kafka_network_socketserver_networkprocessoravgidle_ratio",
    ),
    gauge(
        "kafka.network<type=RequestChannel, name=([^,]+)QueueSize><>Value",
        "kafka_network_requestchannel_$1_queue_size",
    ),
    gauge(
        "kafka.server<type=KafkaRequestHandlerPool, name=RequestHandlerAvgIdlePercent><>OneMinuteRate",
        "kafka_server_kafkarequesthandlerpool_requesthandleravgidle_ratio",
    ),
    // Connections per listener (Kafka's own metrics, dashes become underscores).
    gauge(
        "kafka.server<type=socket-server-metrics, listener=([^,]+), networkProcessor=([^,]+)><>connection-count",
        "kafka_server_socket_server_metrics_connection_count",
        { listener: "$1", network_processor: "$2" },
    ),
    // KRaft: quorum leader, epoch, commit latency; the metadata log each node has applied.
    gauge("kafka.server<type=raft-metrics><>([^:]+)", "kafka_server_raftmetrics_$1"),
    gauge(
        "kafka.server<type=broker-metadata-metrics><>([^:]+)",
        "kafka_server_brokermetadatametrics_$1",
    ),
    // Controller: active controller, offline partitions, fenced brokers, topic/partition counts.
    gauge("kafka.controller<type=([^,]+), name=([^,]+)><>Value", "kafka_controller_$1_$2"),
    counter("kafka.controller<type=([^,]+), name=([^,]+)><>Count", "kafka_controller_$1_$2_total"),
    // Anything else a broker reports as a single value or a count, by its bean's type and name.
    counter("kafka.(\\w+)<type=([^,]+), name=([^,]+)><>Count", "kafka_$1_$2_$3_total"),
    gauge("kafka.(\\w+)<type=([^,]+), name=([^,]+)><>Value", "kafka_$1_$2_$3"),
];

/** The exporter's configuration file (what the metrics ConfigMap holds). */
export const JMX_EXPORTER_RULES = stringify({
    lowercaseOutputName: true,
    lowercaseOutputLabelNames: true,
    rules: JMX_RULES,
});

/**
 * `spec.kafkaExporter`: consumer-group lag per partition and topic offsets, for every group and
 * topic except Kafka's internal ones; its container gets `securityContext` (the restricted one of
 * the other Kafka containers).
 */
export function kafkaExporterSpec(securityContext: object): Record<string, unknown> {
    return {
        topicRegex: ".*",
        topicExcludeRegex: "^__.*",
        groupRegex: ".*",
        resources: {
            requests: { cpu: "50m", memory: "64Mi" },
            limits: { memory: "128Mi" },
        },
        template: { container: { securityContext } },
    };
}
