/**
 * The stand-in's User Operator: a KafkaUser's SCRAM-SHA-512 credentials and ACLs on the broker and
 * its Secret (`password`, `sasl.jaas.config`); when the KafkaUser is gone, its credentials and
 * ACLs go too (its Secret goes by owner reference).
 */
import { pbkdf2Sync, randomBytes } from "node:crypto";
import { SECRET_KEYS } from "../schemas/naming";
import {
    NamedError,
    StandInContext,
    errorText,
    now,
    ownerReference,
} from "./strimzi-standin-common";
import {
    alignAcls,
    deleteScramCredential,
    upsertScramCredential,
} from "./strimzi-standin-kafka-auth";
import {
    CustomResource,
    desiredAcls,
    saslJaasConfig,
    userFailedStatus,
    userReadyStatus,
    userSecretLabels,
} from "./strimzi-status";

export class UserOperator {
    /** What the operator has put into Kafka per user, to clean up after a KafkaUser is deleted. */
    private readonly known = new Map<string, { name: string; cluster: string }>();
    private readonly scramApplied = new Map<string, string>();

    constructor(private readonly ctx: StandInContext) {}

    /** `namespace/name` of every KafkaUser whose credentials or ACLs this operator set. */
    knownUsers(): Array<[key: string, name: string]> {
        return [...this.known].map(([key, u]) => [key, u.name]);
    }

    async reconcile(user: CustomResource): Promise<void> {
        const ns = user.metadata.namespace;
        const name = user.metadata.name;
        this.known.set(`${ns}/${name}`, {
            name,
            cluster: user.metadata.labels?.["strimzi.io/cluster"] ?? "",
        });
        const { kube, admin, log } = this.ctx;
        try {
            const password = await this.applyAuthentication(user);
            await alignAcls(admin, name, desiredAcls(user), log);
            if (password !== undefined) {
                await kube.upsertSecret(ns, {
                    metadata: {
                        name,
                        namespace: ns,
                        labels: userSecretLabels(user),
                        ownerReferences: [ownerReference(user, "KafkaUser")],
                    },
                    type: "Opaque",
                    data: {
                        [SECRET_KEYS.kafkaPassword]: Buffer.from(password).toString("base64"),
                        [SECRET_KEYS.kafkaSaslJaasConfig]: Buffer.from(
                            saslJaasConfig(name, password),
                        ).toString("base64"),
                    },
                });
            }
            await kube.writeStatus("KafkaUser", user, userReadyStatus(user, now()));
        } catch (e) {
            const reason = e instanceof NamedError ? e.reason : "KafkaError";
            await kube.writeStatus(
                "KafkaUser",
                user,
                userFailedStatus(user, reason, errorText(e), now()),
            );
        }
    }

    /** A KafkaUser that is gone: its credentials and ACLs go too. */
    async forget(key: string, name: string): Promise<void> {
        await deleteScramCredential(this.ctx.kafkaBootstrap, name).catch(() => undefined);
        await alignAcls(this.ctx.admin, name, [], this.ctx.log);
        this.known.delete(key);
        this.scramApplied.delete(key);
        this.ctx.log(`removed credentials and ACLs of deleted KafkaUser ${key}`);
    }

    /** Sets the SCRAM credentials the spec asks for; resolves to the password, if any. */
    private async applyAuthentication(user: CustomResource): Promise<string | undefined> {
        const name = user.metadata.name;
        const key = `${user.metadata.namespace}/${name}`;
        const authn = user.spec?.authentication;
        if (authn === undefined) return undefined;
        if (authn.type !== "scram-sha-512") {
            throw new NamedError(
                "InvalidResourceException",
                `authentication type ${authn.type} is not handled by the stand-in`,
            );
        }
        const password = await this.password(user);
        const fingerprint = `${user.metadata.generation}:${pbkdf2Sync(password, "fp", 1, 16, "sha256").toString("hex")}`;
        if (this.scramApplied.get(key) !== fingerprint) {
            await upsertScramCredential(this.ctx.kafkaBootstrap, name, password);
            this.scramApplied.set(key, fingerprint);
            this.ctx.log(`SCRAM-SHA-512 credentials set for ${name}`);
        }
        return password;
    }

    /** The password the spec references, else the one the user's Secret holds, else a new one. */
    private async password(user: CustomResource): Promise<string> {
        const ns = user.metadata.namespace;
        const ref = user.spec?.authentication?.password?.valueFrom?.secretKeyRef;
        if (ref) {
            const secret = await this.ctx.kube.readSecret(ns, ref.name);
            const value = secret?.data?.[ref.key];
            if (!value) {
                throw new NamedError(
                    "InvalidResourceException",
                    `Secret ${ref.name} in namespace ${ns} with requested user password does not exist or has no key ${ref.key}`,
                );
            }
            return Buffer.from(value, "base64").toString();
        }
        const own = (await this.ctx.kube.readSecret(ns, user.metadata.name))?.data?.[
            SECRET_KEYS.kafkaPassword
        ];
        return own
            ? Buffer.from(own, "base64").toString()
            : randomBytes(24).toString("base64url").slice(0, 32);
    }
}
