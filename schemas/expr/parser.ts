/**
 * The parser of the expression grammar (see `schemas/expr.ts` for what is accepted): recursive
 * descent over the lexer's tokens, one method per precedence level, each error naming the token
 * and the fix.
 */
import { quoteString } from "../sql";
import { ChType, parseType } from "../types";
import {
    ArithOp,
    CompareOp,
    Expr,
    ExprField,
    ExprOptions,
    IntervalUnit,
    LiteralExpr,
    MAX_EXPRESSION_DEPTH,
    MAX_EXPRESSION_LENGTH,
    containsIn,
    treeDepth,
} from "./ast";
import { CASE_INSENSITIVE, MIN_ARGS, allowedFunction } from "./functions";
import { Token, fail, lex, show } from "./lexer";
import { checkTtlShape } from "./ttl";

const INTERVAL_UNITS: readonly IntervalUnit[] = [
    "SECOND",
    "MINUTE",
    "HOUR",
    "DAY",
    "WEEK",
    "MONTH",
    "QUARTER",
    "YEAR",
];

const FIELD_LABEL: Readonly<Record<ExprField, string>> = {
    default: "a default",
    ttl: "a ttl",
    partitionBy: "partitionBy",
    orderBy: "an orderBy item",
};

/** SQL words that would start a clause, command or subquery: named as such in errors. */
const CLAUSE_WORDS = new Set(
    (
        "select from where settings format union with into group having limit order by asc desc " +
        "modify clear column constraint add drop alter rename comment materialize remove " +
        "index projection ttl delete update insert create attach detach system to disk volume " +
        "codec default alias ephemeral primary key engine partition sample join array"
    ).split(" "),
);

/** Words that mean something else in an expression; never read as a column name when bare. */
const KEYWORDS = new Set(
    "and or not null true false case when then else end cast interval is in like ilike between as".split(
        " ",
    ),
);

const COMPARE: Readonly<Record<string, CompareOp>> = {
    "=": "=",
    "==": "=",
    "!=": "!=",
    "<>": "!=",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
};

/**
 * Parses one expression field. Throws SqlInputError naming the offending token and the fix;
 * the loader prefixes the file and key.
 */
export function parseExpression(text: string, options: ExprOptions): Expr {
    if (typeof text !== "string") fail("expression must be a string");
    if (text.length > MAX_EXPRESSION_LENGTH) {
        fail(
            `expression is ${text.length} characters long; at most ${MAX_EXPRESSION_LENGTH} are allowed`,
        );
    }
    const parser = new Parser(lex(text), options);
    const expr = parser.parseTop();
    // A chain `a + b + c ...` loops in the parser but nests in the tree; the engine refuses trees
    // deeper than max_ast_depth (1000, about two levels per operator), so the tree is bounded too.
    if (treeDepth(expr) > MAX_EXPRESSION_DEPTH) {
        fail(
            `expression is nested more than ${MAX_EXPRESSION_DEPTH} levels deep (each operator of a chain such as a + b + c counts); simplify it`,
        );
    }
    if (options.field === "ttl") checkTtlShape(expr, options.columnTypes);
    return expr;
}

class Parser {
    private pos = 0;
    private depth = 0;
    private readonly columns: ReadonlySet<string>;

    constructor(
        private readonly tokens: readonly Token[],
        private readonly options: ExprOptions,
    ) {
        // A default is computed in the view from the Kafka table (see the module comment).
        this.columns = new Set(options.field === "default" ? [] : options.columns);
    }

    parseTop(): Expr {
        if (this.peek().kind === "end") fail("expression is empty");
        const expr = this.parseOr();
        if (this.options.field === "ttl" && this.isWord("DELETE")) this.pos++;
        const t = this.peek();
        if (t.kind !== "end") fail(this.trailingMessage(t));
        return expr;
    }

    private trailingMessage(t: Token): string {
        const field = FIELD_LABEL[this.options.field];
        const where = show(t);
        if (t.text === ",") {
            return `${where}: ${field} is exactly one expression; a top-level ',' is not allowed${this.options.field === "orderBy" ? " (list ORDER BY items separately)" : ""}`;
        }
        const w = t.kind === "word" ? t.text.toUpperCase() : "";
        if (this.options.field === "orderBy" && (w === "ASC" || w === "DESC")) {
            return `${where}: a table's ORDER BY has no ASC/DESC; remove it`;
        }
        if (
            this.options.field === "ttl" &&
            ["TO", "WHERE", "GROUP", "RECOMPRESS", "SET"].includes(w)
        ) {
            return `${where}: a ttl is '<expression> [DELETE]' only; moves, WHERE, GROUP BY and RECOMPRESS are not supported`;
        }
        if (CLAUSE_WORDS.has(w.toLowerCase())) {
            return `${where}: SQL clauses and commands are not allowed; ${field} is exactly one expression`;
        }
        return `${where}: unexpected after the expression; ${field} is exactly one expression`;
    }

    // ---- token helpers ----

    private peek(offset = 0): Token {
        return this.tokens[Math.min(this.pos + offset, this.tokens.length - 1)]!;
    }
    private next(): Token {
        const t = this.peek();
        this.pos++;
        return t;
    }
    private isWord(word: string, offset = 0): boolean {
        const t = this.peek(offset);
        return t.kind === "word" && t.text.toUpperCase() === word;
    }
    private isOp(op: string, offset = 0): boolean {
        const t = this.peek(offset);
        return t.kind === "op" && t.text === op;
    }
    private expectOp(op: string, what: string): void {
        const t = this.next();
        if (t.kind !== "op" || t.text !== op) fail(`${show(t)}: expected '${op}' ${what}`);
    }
    private expectWord(word: string, what: string): void {
        const t = this.next();
        if (t.kind !== "word" || t.text.toUpperCase() !== word)
            fail(`${show(t)}: expected ${word} ${what}`);
    }
    private nested<T>(f: () => T): T {
        if (++this.depth > MAX_EXPRESSION_DEPTH) {
            fail(
                `${show(this.peek())}: expression is nested more than ${MAX_EXPRESSION_DEPTH} levels deep; simplify it`,
            );
        }
        try {
            return f();
        } finally {
            this.depth--;
        }
    }

    // ---- precedence levels, lowest first ----

    /**
     * A left-associative level: operands of the next level joined by this level's operators
     * (`a - b - c` is `(a - b) - c`). `operator` names the one at the cursor, if any.
     */
    private leftAssociative(
        operand: () => Expr,
        operator: () => string | undefined,
        join: (op: string, left: Expr, right: Expr) => Expr,
    ): Expr {
        let left = operand();
        for (let op = operator(); op !== undefined; op = operator()) {
            this.pos++;
            left = join(op, left, operand());
        }
        return left;
    }

    /** Comma-separated expressions up to, not including, the `close` operator. */
    private exprList(close: string): Expr[] {
        const items: Expr[] = [];
        if (this.isOp(close)) return items;
        do {
            if (items.length > 0) this.pos++;
            items.push(this.parseOr());
        } while (this.isOp(","));
        return items;
    }

    private parseOr(): Expr {
        return this.nested(() =>
            this.leftAssociative(
                () => this.parseAnd(),
                () => (this.isWord("OR") ? "OR" : undefined),
                (_, left, right) => ({ kind: "logical", op: "OR", left, right }),
            ),
        );
    }

    private parseAnd(): Expr {
        return this.leftAssociative(
            () => this.parseNot(),
            () => (this.isWord("AND") ? "AND" : undefined),
            (_, left, right) => ({ kind: "logical", op: "AND", left, right }),
        );
    }

    private parseNot(): Expr {
        if (this.isWord("NOT")) {
            this.pos++;
            return this.nested(() => ({ kind: "not", arg: this.parseNot() }));
        }
        return this.parseIsNull();
    }

    private parseIsNull(): Expr {
        let arg = this.parsePredicate();
        while (this.isWord("IS")) {
            this.pos++;
            const negated = this.isWord("NOT");
            if (negated) this.pos++;
            this.expectWord("NULL", "after IS [NOT] (only IS NULL and IS NOT NULL exist)");
            arg = { kind: "isNull", negated, arg };
        }
        return arg;
    }

    /** Comparison, LIKE, IN, BETWEEN: one per level, never chained without parentheses. */
    private parsePredicate(): Expr {
        const left = this.parseConcat();
        const result = this.predicateAfter(left);
        if (result !== left && this.startsPredicate()) {
            fail(
                `${show(this.peek())}: comparisons do not chain; add parentheses, e.g. (a = b) = c`,
            );
        }
        return result;
    }

    private startsPredicate(): boolean {
        const t = this.peek();
        if (t.kind === "op" && t.text in COMPARE) return true;
        const w = t.kind === "word" ? t.text.toUpperCase() : "";
        if (["LIKE", "ILIKE", "IN", "BETWEEN"].includes(w)) return true;
        return w === "NOT" && ["LIKE", "ILIKE", "IN", "BETWEEN"].some((x) => this.isWord(x, 1));
    }

    private predicateAfter(arg: Expr): Expr {
        const t = this.peek();
        if (t.kind === "op" && t.text in COMPARE) {
            this.pos++;
            return { kind: "compare", op: COMPARE[t.text]!, left: arg, right: this.parseConcat() };
        }
        let negated = false;
        if (
            this.isWord("NOT") &&
            ["LIKE", "ILIKE", "IN", "BETWEEN"].some((x) => this.isWord(x, 1))
        ) {
            negated = true;
            this.pos++;
        }
        if (this.isWord("LIKE") || this.isWord("ILIKE")) {
            const op = this.next().text.toUpperCase() as "LIKE" | "ILIKE";
            return { kind: "like", op, negated, arg, pattern: this.parseConcat() };
        }
        if (this.isWord("BETWEEN")) {
            this.pos++;
            const low = this.parseConcat();
            this.expectWord("AND", "between the bounds of BETWEEN");
            const high = this.parseConcat();
            return { kind: "between", negated, arg, low, high };
        }
        if (this.isWord("IN")) {
            this.pos++;
            return { kind: "in", negated, arg, list: this.parseInList() };
        }
        return arg;
    }

    private parseInList(): LiteralExpr[] {
        const open = this.peek();
        if (open.kind !== "op" || open.text !== "(") {
            fail(
                `${show(open)}: IN takes a parenthesized list of literals, e.g. x IN (1, 2); tables, subqueries and columns are not allowed there`,
            );
        }
        this.pos++;
        const list: LiteralExpr[] = [];
        do {
            if (list.length > 0) this.pos++;
            list.push(this.parseInLiteral());
        } while (this.isOp(","));
        this.expectOp(")", "to close the IN list");
        return list;
    }

    private parseInLiteral(): LiteralExpr {
        const t = this.peek();
        if (t.kind === "op" && t.text === "-" && this.peek(1).kind === "number") {
            this.pos += 2;
            return { kind: "number", text: "-" + this.peek(-1).text };
        }
        const lit = this.literal(t);
        if (!lit) {
            fail(
                `${show(t)}: an IN list holds only literals (numbers, strings, NULL, true, false); subqueries, tables and expressions are not allowed`,
            );
        }
        this.pos++;
        return lit;
    }

    private literal(t: Token): LiteralExpr | undefined {
        if (t.kind === "number") return { kind: "number", text: t.text };
        if (t.kind === "string") return { kind: "string", value: t.text };
        if (t.kind !== "word") return undefined;
        const w = t.text.toUpperCase();
        if (w === "NULL") return { kind: "null" };
        if (w === "TRUE" || w === "FALSE") return { kind: "bool", value: w === "TRUE" };
        return undefined;
    }

    /** The arithmetic operator among `ops` at the cursor, if any. */
    private arithOp(...ops: ArithOp[]): ArithOp | undefined {
        return ops.find((op) => this.isOp(op));
    }

    private arith(op: string, left: Expr, right: Expr): Expr {
        return { kind: "arith", op: op as ArithOp, left, right };
    }

    private parseConcat(): Expr {
        return this.leftAssociative(
            () => this.parseAdditive(),
            () => this.arithOp("||"),
            (op, left, right) => this.arith(op, left, right),
        );
    }

    private parseAdditive(): Expr {
        return this.leftAssociative(
            () => this.parseMultiplicative(),
            () => this.arithOp("+", "-"),
            (op, left, right) => this.arith(op, left, right),
        );
    }

    private parseMultiplicative(): Expr {
        return this.leftAssociative(
            () => this.parseUnary(),
            () => this.arithOp("*", "/", "%"),
            (op, left, right) => this.arith(op, left, right),
        );
    }

    private parseUnary(): Expr {
        if (this.isOp("-")) {
            this.pos++;
            // ClickHouse reads '-' before a number as a negative literal.
            if (this.peek().kind === "number")
                return { kind: "number", text: "-" + this.next().text };
            return this.nested(() => ({ kind: "negate", arg: this.parseUnary() }));
        }
        return this.parsePrimary();
    }

    private parsePrimary(): Expr {
        const t = this.peek();
        const lit = this.literal(t);
        if (lit) {
            this.pos++;
            return lit;
        }
        if (t.kind === "op" && t.text === "(") {
            this.pos++;
            if (this.isWord("SELECT") || this.isWord("WITH"))
                fail(`keyword ${show(this.peek())}: subqueries are not allowed`);
            const inner = this.parseOr();
            if (this.isOp(",")) {
                fail(
                    `${show(this.peek())}: a parenthesized list is a tuple; tuples are allowed only as IN lists (write tuple(a, b) if you mean one)`,
                );
            }
            this.expectOp(")", "to close the parenthesis");
            return inner;
        }
        if (t.kind === "op" && t.text === "[") {
            this.pos++;
            return this.nested(() => {
                const items = this.exprList("]");
                this.expectOp("]", "to close the array");
                return { kind: "array", items };
            });
        }
        if (t.kind === "quoted") {
            this.pos++;
            return this.column(t);
        }
        if (t.kind === "word") {
            const w = t.text.toUpperCase();
            if (w === "CASE") return this.nested(() => this.parseCase());
            if (w === "INTERVAL" && this.peek(1).kind === "number") return this.parseInterval();
            if (this.isOp("(", 1)) {
                if (w === "CAST") return this.nested(() => this.parseCast());
                return this.nested(() => this.parseCall());
            }
            if (KEYWORDS.has(t.text.toLowerCase())) {
                fail(
                    `${show(t)}: keyword in the place of a value${this.columns.has(t.text) ? `; write the column as \`${t.text}\`` : ""}`,
                );
            }
            this.pos++;
            return this.column(t);
        }
        if (t.kind === "end") fail("expression ends too early: a value is missing at the end");
        fail(`${show(t)}: expected a value (a literal, a column, a function call or '(')`);
    }

    private column(t: Token): Expr {
        if (this.columns.has(t.text)) return { kind: "column", name: t.text };
        if (this.options.field === "default") {
            fail(
                `${show(t)}: a default may not refer to columns or names (it is computed from the Kafka message when the field is absent); use a constant expression`,
            );
        }
        if (CLAUSE_WORDS.has(t.text.toLowerCase())) {
            fail(
                `'${t.text}' at character ${t.at}: SQL clauses, commands and subqueries are not allowed in an expression; write one expression over the stream's columns`,
            );
        }
        const list = [...this.columns];
        const near = list.find((c) => c.toLowerCase() === t.text.toLowerCase());
        const hint = near
            ? `; column names are case-sensitive: did you mean '${near}'?`
            : `; the stream's columns are ${list.slice(0, 20).join(", ")}${list.length > 20 ? ", ..." : ""}`;
        fail(`unknown column '${t.text}' at character ${t.at}${hint}`);
    }

    private parseCall(): Expr {
        const t = this.next();
        const canonical = allowedFunction(t.text);
        if (!canonical || (canonical !== t.text && !CASE_INSENSITIVE.has(canonical))) {
            if (canonical) {
                fail(
                    `function '${t.text}' at character ${t.at}: ClickHouse spells this function '${canonical}' (its name is case-sensitive)`,
                );
            }
            const lower = t.text.toLowerCase();
            const why = /^(dict|joinget)/.test(lower)
                ? "table and dictionary access is not allowed in a row expression"
                : "only row functions from the allow-list in schemas/expr.ts may be called";
            fail(`function '${t.text}' at character ${t.at} is not allowed: ${why}`);
        }
        this.pos++; // '('
        const args = this.exprList(")");
        this.expectOp(")", `to close the arguments of ${canonical}`);
        const min = MIN_ARGS[canonical] ?? 0;
        if (args.length < min) {
            fail(`function '${t.text}' at character ${t.at} takes at least ${min} arguments`);
        }
        // ClickHouse reads position(a IN b) as SQL's POSITION(needle IN haystack).
        if (canonical === "position" && args[0] !== undefined && containsIn(args[0])) {
            fail(
                `function '${t.text}' at character ${t.at}: its first argument cannot contain IN; write position(haystack, needle)`,
            );
        }
        if (this.isOp("(")) {
            fail(`${show(this.peek())}: parametric calls f(p)(x) are not allowed`);
        }
        return { kind: "call", name: canonical, args };
    }

    private parseCast(): Expr {
        this.pos += 2; // CAST (
        const arg = this.parseOr();
        if (this.isOp(",")) {
            fail(`${show(this.peek())}: write CAST(x AS Type), not CAST(x, 'Type')`);
        }
        this.expectWord("AS", "in CAST(x AS Type)");
        // The type runs to the ')' closing the CAST; parseType reads and checks it.
        const first = this.pos;
        let depth = 0;
        while (!(depth === 0 && this.isOp(")"))) {
            const t = this.next();
            if (t.kind === "end") fail("CAST is not closed: expected ')' after the type");
            if (t.kind === "op" && t.text === "(") depth++;
            if (t.kind === "op" && t.text === ")") depth--;
        }
        const typeTokens = this.tokens.slice(first, this.pos);
        this.pos++; // ')'
        if (typeTokens.length === 0) fail(`${show(this.peek(-1))}: CAST needs a type after AS`);
        const typeText = typeTokens
            .map((t) => (t.kind === "string" ? quoteString(t.text) : t.text))
            .join(" ");
        let type: ChType;
        try {
            type = parseType(typeText);
        } catch (e) {
            fail(`type in CAST at character ${typeTokens[0]!.at}: ${(e as Error).message}`);
        }
        return { kind: "cast", arg, type: type.text };
    }

    private parseInterval(): Expr {
        this.pos++; // INTERVAL
        const n = this.next();
        if (!/^[0-9]+$/.test(n.text))
            fail(`${show(n)}: INTERVAL takes a whole number, e.g. INTERVAL 30 DAY`);
        const u = this.next();
        const unit = INTERVAL_UNITS.find((x) => u.kind === "word" && u.text.toUpperCase() === x);
        if (!unit) fail(`${show(u)}: INTERVAL unit must be one of ${INTERVAL_UNITS.join(", ")}`);
        return { kind: "interval", value: n.text, unit };
    }

    private parseCase(): Expr {
        this.pos++; // CASE
        if (this.isWord("END")) fail(`${show(this.peek())}: CASE needs at least one WHEN`);
        const operand = this.isWord("WHEN") ? undefined : this.parseOr();
        const whens: Array<{ when: Expr; then: Expr }> = [];
        while (this.isWord("WHEN")) {
            this.pos++;
            const when = this.parseOr();
            this.expectWord("THEN", "after CASE WHEN <condition>");
            whens.push({ when, then: this.parseOr() });
        }
        if (whens.length === 0) fail(`${show(this.peek())}: CASE needs at least one WHEN`);
        let otherwise: Expr | undefined;
        if (this.isWord("ELSE")) {
            this.pos++;
            otherwise = this.parseOr();
        }
        this.expectWord("END", "to close CASE");
        return {
            kind: "case",
            ...(operand !== undefined ? { operand } : {}),
            whens,
            ...(otherwise !== undefined ? { else: otherwise } : {}),
        };
    }
}
