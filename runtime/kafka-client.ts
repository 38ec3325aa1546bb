/**
 * The Node Kafka client of the benchmark's naive loop and latency producer and of the Strimzi
 * stand-in's admin work: @platformatic/kafka, a maintained pure-JavaScript client (no native
 * addon, lz4 through WebAssembly). Import it from here, never directly: this module makes it run
 * on Node 20.
 *
 * It declares Node >= 22, and the one Node 22 API it calls is `Promise.withResolvers` (checked
 * across its dist/ and its two runtime dependencies); with that supplied it runs on Node 20, the
 * project's floor. The shim is installed only where the runtime lacks the method.
 */
type Resolvers<T> = {
    promise: Promise<T>;
    resolve: (value: T | PromiseLike<T>) => void;
    reject: (reason?: unknown) => void;
};

const promiseCtor = Promise as unknown as { withResolvers?: <T>() => Resolvers<T> };
if (typeof promiseCtor.withResolvers !== "function") {
    promiseCtor.withResolvers = <T>(): Resolvers<T> => {
        let resolve!: Resolvers<T>["resolve"];
        let reject!: Resolvers<T>["reject"];
        const promise = new Promise<T>((res, rej) => {
            resolve = res;
            reject = rej;
        });
        return { promise, resolve, reject };
    };
}

export {
    Admin,
    Connection,
    Consumer,
    MessagesStreamModes,
    Producer,
    alterUserScramCredentialsV0,
    stringDeserializers,
    stringSerializers,
} from "@platformatic/kafka";
export type { Acl } from "@platformatic/kafka";
