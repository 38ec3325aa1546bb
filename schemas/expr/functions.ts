/**
 * The functions an expression may call: an allow-list of row functions that read only their
 * arguments, with what the parser and the TTL check need to know about them.
 */

/**
 * Row functions an expression may call, by ClickHouse's own name. No aggregate, table, dictionary
 * (`dictGet*`), join (`joinGet`), introspection, settings or server-state function; no
 * `arrayJoin` (it multiplies rows). `test/integration/expr.test.ts` checks every name and
 * `CASE_INSENSITIVE` against the engine's `system.functions`.
 */
export const FUNCTIONS: readonly string[] = [
    // dates and times
    "toDate", "toDate32", "toDateTime", "toDateTime64", "toStartOfYear", "toStartOfQuarter",
    "toStartOfMonth", "toStartOfWeek", "toStartOfDay", "toStartOfHour", "toStartOfMinute",
    "toStartOfSecond", "toStartOfFiveMinutes", "toStartOfTenMinutes", "toStartOfFifteenMinutes",
    "toStartOfInterval", "toMonday", "toYYYYMM", "toYYYYMMDD", "toYYYYMMDDhhmmss", "toYear",
    "toQuarter", "toMonth", "toDayOfMonth", "toDayOfWeek", "toDayOfYear", "toHour", "toMinute",
    "toSecond", "toISOWeek", "toISOYear", "toWeek", "toUnixTimestamp", "fromUnixTimestamp", "now",
    "now64", "today", "yesterday", "dateDiff", "dateTrunc", "addSeconds", "addMinutes", "addHours",
    "addDays", "addWeeks", "addMonths", "addQuarters", "addYears", "subtractSeconds",
    "subtractMinutes", "subtractHours", "subtractDays", "subtractWeeks", "subtractMonths",
    "subtractQuarters", "subtractYears", "toTimezone", "formatDateTime", "toIntervalSecond",
    "toIntervalMinute", "toIntervalHour", "toIntervalDay", "toIntervalWeek", "toIntervalMonth",
    "toIntervalQuarter", "toIntervalYear", "parseDateTimeBestEffort",
    "parseDateTimeBestEffortOrNull", "parseDateTimeBestEffortOrZero", "parseDateTime64BestEffort",
    "toDateOrNull", "toDateOrZero", "toDateTimeOrNull", "toDateTimeOrZero",
    // type conversion
    "toInt8", "toInt16", "toInt32", "toInt64", "toInt128", "toInt256", "toUInt8", "toUInt16",
    "toUInt32", "toUInt64", "toUInt128", "toUInt256", "toFloat32", "toFloat64", "toInt32OrZero",
    "toInt32OrNull", "toInt64OrZero", "toInt64OrNull", "toUInt32OrZero", "toUInt32OrNull",
    "toUInt64OrZero", "toUInt64OrNull", "toFloat64OrZero", "toFloat64OrNull", "toString",
    "toFixedString", "toDecimal32", "toDecimal64", "toDecimal128", "toDecimal256", "toUUID",
    "toUUIDOrNull", "toUUIDOrZero", "toBool", "toLowCardinality", "toNullable", "toIPv4", "toIPv6",
    "toIPv4OrNull", "toIPv6OrNull",
    // strings, URLs, JSON text
    "lower", "upper", "lowerUTF8", "upperUTF8", "length", "lengthUTF8", "substring",
    "substringUTF8", "concat", "concatWithSeparator", "trimBoth", "trimLeft", "trimRight",
    "leftPad", "rightPad", "left", "right", "replaceAll", "replaceOne", "replaceRegexpAll",
    "replaceRegexpOne", "position", "positionCaseInsensitive", "startsWith", "endsWith",
    "splitByChar", "splitByString", "reverse", "repeat", "empty", "notEmpty", "format", "extract",
    "match", "base64Encode", "base64Decode", "tryBase64Decode", "hex", "unhex", "toValidUTF8",
    "domain", "domainWithoutWWW", "protocol", "path", "queryString", "extractURLParameter",
    "cutQueryString", "JSONExtractString", "JSONExtractInt", "JSONExtractUInt", "JSONExtractFloat",
    "JSONExtractBool", "JSONExtractRaw", "JSONHas",
    // hashes
    "cityHash64", "sipHash64", "sipHash128", "xxHash32", "xxHash64", "xxh3", "murmurHash2_32",
    "murmurHash2_64", "murmurHash3_32", "murmurHash3_64", "murmurHash3_128", "farmHash64",
    "javaHash", "halfMD5", "MD5", "SHA1", "SHA256", "intHash32", "intHash64",
    // arithmetic and maths
    "abs", "round", "floor", "ceil", "trunc", "sqrt", "exp", "log", "log2", "log10", "pow", "sign",
    "greatest", "least", "intDiv", "intDivOrZero", "modulo", "plus", "minus", "multiply", "divide",
    "negate", "gcd", "lcm", "bitAnd", "bitOr", "bitXor", "bitNot", "bitShiftLeft",
    "bitShiftRight", "isNaN", "isFinite", "isInfinite",
    // conditionals and NULL
    "if", "multiIf", "coalesce", "ifNull", "nullIf", "assumeNotNull", "isNull", "isNotNull",
    // arrays, maps, tuples
    "array", "tuple", "map", "arrayElement", "has", "hasAny", "hasAll", "indexOf", "arrayConcat",
    "arrayDistinct", "arrayReverse", "arraySlice", "arrayStringConcat", "mapKeys", "mapValues",
    "mapContainsKey", "tupleElement", "emptyArrayString",
    // identifiers
    "generateUUIDv4", "generateUUIDv7",
]; // prettier-ignore

/** The functions of `FUNCTIONS` that ClickHouse matches case-insensitively. */
export const CASE_INSENSITIVE: ReadonlySet<string> = new Set([
    "now", "now64", "today", "dateDiff", "lower", "upper", "length", "substring", "concat", "left",
    "right", "position", "reverse", "repeat", "hex", "unhex", "abs", "round", "floor", "ceil",
    "trunc", "sqrt", "exp", "log", "log2", "log10", "pow", "sign", "greatest", "least", "if",
    "coalesce", "ifNull", "nullIf", "isNull",
]); // prettier-ignore

/** Functions ClickHouse's parser reads with special syntax, which needs these many arguments. */
export const MIN_ARGS: Readonly<Record<string, number>> = { substring: 2, position: 2 };

const BY_LOWER = new Map(FUNCTIONS.map((f) => [f.toLowerCase(), f]));

/** The allow-listed function spelled like `name` in any case, if there is one. */
export function allowedFunction(name: string): string | undefined {
    return BY_LOWER.get(name.toLowerCase());
}

/** Functions whose result is a Date or DateTime (for the TTL shape check). */
export const DATE_FUNCTIONS: ReadonlySet<string> = new Set([
    "toDate", "toDate32", "toDateTime", "toDateTime64", "toStartOfYear", "toStartOfQuarter",
    "toStartOfMonth", "toStartOfWeek", "toStartOfDay", "toStartOfHour", "toStartOfMinute",
    "toStartOfSecond", "toStartOfFiveMinutes", "toStartOfTenMinutes", "toStartOfFifteenMinutes",
    "toStartOfInterval", "toMonday", "fromUnixTimestamp", "now", "now64", "today", "yesterday",
    "dateTrunc", "addSeconds", "addMinutes", "addHours", "addDays", "addWeeks", "addMonths",
    "addQuarters", "addYears", "subtractSeconds", "subtractMinutes", "subtractHours",
    "subtractDays", "subtractWeeks", "subtractMonths", "subtractQuarters", "subtractYears",
    "toTimezone", "parseDateTimeBestEffort", "parseDateTimeBestEffortOrZero",
    "parseDateTime64BestEffort", "toDateOrZero", "toDateTimeOrZero",
]); // prettier-ignore
