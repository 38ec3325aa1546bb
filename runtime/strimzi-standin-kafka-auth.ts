/**
 * The User Operator's work on the broker: SCRAM-SHA-512 credentials through
 * AlterUserScramCredentials, and ACLs through the admin API.
 */
import { pbkdf2Sync, randomBytes } from "node:crypto";
import { type Acl, Admin, Connection, alterUserScramCredentialsV0 } from "./kafka-client";
import { AclBinding, aclKey } from "./strimzi-status";

const SCRAM_SHA_512 = 2;
const SCRAM_ITERATIONS = 4096;

/** Sets a SCRAM-SHA-512 credential (4096 iterations, as Strimzi does) through AlterUserScramCredentials. */
export async function upsertScramCredential(
    bootstrap: string,
    user: string,
    password: string,
): Promise<void> {
    const salt = Buffer.from(randomBytes(24).toString("base64url"));
    const saltedPassword = pbkdf2Sync(password, salt, SCRAM_ITERATIONS, 64, "sha512");
    await withConnection(bootstrap, async (conn) => {
        const res = await alterUserScramCredentialsV0.api.async(
            conn,
            [],
            [
                {
                    name: user,
                    mechanism: SCRAM_SHA_512,
                    iterations: SCRAM_ITERATIONS,
                    salt,
                    saltedPassword,
                },
            ],
        );
        const failed = res.results.find((r) => r.errorCode !== 0);
        if (failed) {
            throw new Error(
                `setting the SCRAM credentials of ${user} failed: ${failed.errorMessage ?? `error code ${failed.errorCode}`}`,
            );
        }
    });
}

/** Removes a user's SCRAM-SHA-512 credential; absent ones are fine. */
export async function deleteScramCredential(bootstrap: string, user: string): Promise<void> {
    await withConnection(bootstrap, async (conn) => {
        await alterUserScramCredentialsV0.api.async(
            conn,
            [{ name: user, mechanism: SCRAM_SHA_512 }],
            [],
        );
    });
}

async function withConnection<T>(bootstrap: string, fn: (c: Connection) => Promise<T>): Promise<T> {
    const [host, port] = bootstrap.split(",")[0]!.split(":");
    const conn = new Connection("strimzi-stand-in");
    await conn.connect(host!, Number(port));
    try {
        return await fn(conn);
    } finally {
        await conn.close().catch(() => undefined);
    }
}

const RESOURCE_TYPES = { topic: 2, group: 3, cluster: 4, transactionalId: 5 } as const;
const PATTERN_TYPES = { literal: 3, prefix: 4 } as const;
const OPERATIONS: Record<string, Acl["operation"]> = {
    All: 2,
    Read: 3,
    Write: 4,
    Create: 5,
    Delete: 6,
    Alter: 7,
    Describe: 8,
    ClusterAction: 9,
    DescribeConfigs: 10,
    AlterConfigs: 11,
    IdempotentWrite: 12,
};
const PERMISSIONS = { deny: 2, allow: 3 } as const;

function toKafkaAcl(user: string, a: AclBinding): Acl {
    const operation = OPERATIONS[a.operation];
    if (operation === undefined) throw new Error(`unknown ACL operation '${a.operation}'`);
    return {
        resourceType: RESOURCE_TYPES[a.resourceType],
        resourceName: a.resourceName,
        resourcePatternType: PATTERN_TYPES[a.patternType],
        principal: `User:${user}`,
        host: a.host,
        operation,
        permissionType: PERMISSIONS[a.permission],
    };
}

/** Makes the ACLs of `User:<user>` exactly `desired`: adds what is missing, deletes the rest. */
export async function alignAcls(
    admin: Admin,
    user: string,
    desired: readonly AclBinding[],
    log: (line: string) => void,
): Promise<void> {
    const principal = `User:${user}`;
    const existing = await admin.describeAcls({
        filter: {
            resourceType: 1,
            resourceName: null,
            resourcePatternType: 1,
            principal,
            host: null,
            operation: 1,
            permissionType: 1,
        },
    });
    const want = new Map(desired.map((a) => [keyOf(toKafkaAcl(user, a)), toKafkaAcl(user, a)]));
    const have = new Map<string, Acl>();
    for (const r of existing) {
        for (const p of r.acls) {
            const acl: Acl = {
                resourceType: r.resourceType,
                resourceName: r.resourceName,
                resourcePatternType: r.resourcePatternType,
                principal: p.principal,
                host: p.host,
                operation: p.operation,
                permissionType: p.permissionType,
            };
            have.set(keyOf(acl), acl);
        }
    }
    const add = [...want].filter(([k]) => !have.has(k)).map(([, a]) => a);
    const remove = [...have].filter(([k]) => !want.has(k)).map(([, a]) => a);
    if (add.length > 0) await admin.createAcls({ creations: add });
    if (remove.length > 0) await admin.deleteAcls({ filters: remove });
    if (add.length + remove.length > 0) {
        log(
            `ACLs of ${principal}: +${add.length} -${remove.length} (${desired.map(aclKey).length} wanted)`,
        );
    }
}

function keyOf(a: Acl): string {
    return [
        a.resourceType,
        a.resourceName,
        a.resourcePatternType,
        a.host,
        a.operation,
        a.permissionType,
    ].join("|");
}
