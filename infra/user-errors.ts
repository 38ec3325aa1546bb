import * as pulumi from "@pulumi/pulumi";
import { StreamSchemaError } from "../schemas/loader";
import { QuerySchemaError } from "../schemas/queries";
import { ConfigError } from "./config";

/**
 * A problem the user fixes in a file they own (a stack config key, a stream file) becomes a
 * `pulumi.RunError`: the engine prints its message alone, as Pulumi's own `error:` line. Anything
 * else is a bug and passes through unchanged, so it keeps "unhandled exception" and its stack.
 */
export function asUserError(e: unknown): unknown {
    if (
        e instanceof ConfigError ||
        e instanceof StreamSchemaError ||
        e instanceof QuerySchemaError
    ) {
        return new pulumi.RunError(e.message);
    }
    return e;
}

/** Runs one validation step of the program, reporting user errors as `asUserError` does. */
export function validated<T>(step: () => T): T {
    try {
        return step();
    } catch (e) {
        throw asUserError(e);
    }
}
