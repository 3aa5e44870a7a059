#!/usr/bin/env node
// Conformance fixture: an MCP server over streamable HTTP with every tool, resource, prompt and behaviour
// the server scenarios of @modelcontextprotocol/conformance (the version pinned in tests/deps) ask for.
// Built on the official TypeScript SDK's low-level `Server`, so every list entry and result is exactly the
// JSON written here (no schema conversion), and run with the Node 22 binary from tests/deps.
//
//   node tests/conformance/fixture_server.mjs PORT        serves http://127.0.0.1:PORT/mcp
//
// PORT 0 picks a free port. Once listening it prints `listening on http://127.0.0.1:<port>/mcp` on stdout.
//
// Environment: GIGMCP_TEST_NODE_MODULES (default: tests/deps/node_modules next to this file) locates the SDK;
// FIXTURE_DEBUG=1 logs every HTTP request to stderr.
//
// Sessions are stateful (one SDK Server per session, as the SDK requires). Responses to POSTs are event
// streams, with an in-memory event store so streams are resumable (priming events, Last-Event-ID replay).
// Requests whose Host or Origin is not a loopback name are refused with 403 (DNS-rebinding protection).

import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import { randomUUID } from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules = process.env.GIGMCP_TEST_NODE_MODULES || path.join(here, '..', 'deps', 'node_modules');
const sdkFile = (rel) => pathToFileURL(path.join(nodeModules, '@modelcontextprotocol', 'sdk', 'dist', 'esm', rel)).href;

const { Server } = await import(sdkFile('server/index.js'));
const { StreamableHTTPServerTransport } = await import(sdkFile('server/streamableHttp.js'));
const {
    CallToolRequestSchema,
    CompleteRequestSchema,
    CreateMessageResultSchema,
    ElicitResultSchema,
    ErrorCode,
    GetPromptRequestSchema,
    ListPromptsRequestSchema,
    ListResourcesRequestSchema,
    ListResourceTemplatesRequestSchema,
    ListToolsRequestSchema,
    McpError,
    ReadResourceRequestSchema,
    SubscribeRequestSchema,
    UnsubscribeRequestSchema,
} = await import(sdkFile('types.js'));

const port = Number(process.argv[2]);
if (process.argv[2] === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
    console.error('usage: fixture_server.mjs PORT');
    process.exit(2);
}
const debug = process.env.FIXTURE_DEBUG === '1';
const log = (...args) => console.error('[fixture]', ...args);

// ------------------------------------------------------------------------------------------- test media
// A 1x1 red PNG and a short silent WAV, built here rather than pasted in.

function pngChunk(type, data) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const typed = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(typed));
    return Buffer.concat([len, typed, crc]);
}

function redPixelPng() {
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(1, 0); // width
    ihdr.writeUInt32BE(1, 4); // height
    ihdr[8] = 8; // bit depth
    ihdr[9] = 2; // colour type: RGB
    ihdr[10] = 0; // compression
    ihdr[11] = 0; // filter
    ihdr[12] = 0; // interlace
    const scanline = Buffer.from([0, 255, 0, 0]); // filter byte 0, then R G B
    return Buffer.concat([
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
        pngChunk('IHDR', ihdr),
        pngChunk('IDAT', zlib.deflateSync(scanline)),
        pngChunk('IEND', Buffer.alloc(0)),
    ]).toString('base64');
}

function silentWav() {
    const sampleRate = 8000;
    const samples = 800; // 0.1 s of 8-bit mono silence
    const data = Buffer.alloc(samples, 128);
    const header = Buffer.alloc(44);
    header.write('RIFF', 0, 'ascii');
    header.writeUInt32LE(36 + data.length, 4);
    header.write('WAVE', 8, 'ascii');
    header.write('fmt ', 12, 'ascii');
    header.writeUInt32LE(16, 16); // fmt chunk size
    header.writeUInt16LE(1, 20); // PCM
    header.writeUInt16LE(1, 22); // mono
    header.writeUInt32LE(sampleRate, 24);
    header.writeUInt32LE(sampleRate, 28); // byte rate
    header.writeUInt16LE(1, 32); // block align
    header.writeUInt16LE(8, 34); // bits per sample
    header.write('data', 36, 'ascii');
    header.writeUInt32LE(data.length, 40);
    return Buffer.concat([header, data]).toString('base64');
}

const PNG = redPixelPng();
const WAV = silentWav();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ------------------------------------------------------------------------------------------- the catalogue

const noArgs = { type: 'object', properties: {} };

const TOOLS = [
    { name: 'test_simple_text', description: 'Returns a simple text response', inputSchema: noArgs },
    { name: 'test_image_content', description: 'Returns a 1x1 PNG image', inputSchema: noArgs },
    { name: 'test_audio_content', description: 'Returns a short WAV clip', inputSchema: noArgs },
    { name: 'test_embedded_resource', description: 'Returns an embedded text resource', inputSchema: noArgs },
    {
        name: 'test_multiple_content_types',
        description: 'Returns text, image and resource content together',
        inputSchema: noArgs,
    },
    {
        name: 'test_tool_with_logging',
        description: 'Sends three log messages while it runs',
        inputSchema: noArgs,
    },
    { name: 'test_error_handling', description: 'Always returns a tool error', inputSchema: noArgs },
    {
        name: 'test_tool_with_progress',
        description: 'Reports progress 0, 50 and 100 of 100 when given a progress token',
        inputSchema: noArgs,
    },
    {
        name: 'test_sampling',
        description: 'Asks the client for an LLM completion of the prompt',
        inputSchema: {
            type: 'object',
            properties: { prompt: { type: 'string', description: 'The prompt to send to the LLM' } },
            required: ['prompt'],
        },
    },
    {
        name: 'test_elicitation',
        description: 'Asks the user, through the client, for a username and an email address',
        inputSchema: {
            type: 'object',
            properties: { message: { type: 'string', description: 'The message to show the user' } },
            required: ['message'],
        },
    },
    {
        name: 'test_elicitation_sep1034_defaults',
        description: 'Elicitation whose schema has a default for every primitive type (SEP-1034)',
        inputSchema: noArgs,
    },
    {
        name: 'test_elicitation_sep1330_enums',
        description: 'Elicitation whose schema has all five enum variants (SEP-1330)',
        inputSchema: noArgs,
    },
    {
        name: 'json_schema_2020_12_tool',
        description: 'Tool with JSON Schema 2020-12 features',
        inputSchema: {
            $schema: 'https://json-schema.org/draft/2020-12/schema',
            type: 'object',
            $defs: {
                address: {
                    type: 'object',
                    properties: { street: { type: 'string' }, city: { type: 'string' } },
                },
            },
            properties: { name: { type: 'string' }, address: { $ref: '#/$defs/address' } },
            additionalProperties: false,
        },
    },
    {
        name: 'test_reconnection',
        description: 'Closes its response stream before replying, so the client must resume it (SEP-1699)',
        inputSchema: noArgs,
    },
];

const RESOURCES = [
    {
        uri: 'test://static-text',
        name: 'static-text',
        title: 'Static text',
        description: 'A static text resource',
        mimeType: 'text/plain',
    },
    {
        uri: 'test://static-binary',
        name: 'static-binary',
        title: 'Static binary',
        description: 'A static binary resource (a 1x1 PNG)',
        mimeType: 'image/png',
    },
    {
        uri: 'test://watched-resource',
        name: 'watched-resource',
        title: 'Watched resource',
        description: 'A resource clients can subscribe to',
        mimeType: 'text/plain',
    },
];

const TEMPLATES = [
    {
        uriTemplate: 'test://template/{id}/data',
        name: 'template-data',
        title: 'Data by id',
        description: 'JSON data for an id, substituted into the template',
        mimeType: 'application/json',
    },
];

const PROMPTS = [
    { name: 'test_simple_prompt', description: 'A prompt without arguments' },
    {
        name: 'test_prompt_with_arguments',
        description: 'A prompt with two required arguments',
        arguments: [
            { name: 'arg1', description: 'First test argument', required: true },
            { name: 'arg2', description: 'Second test argument', required: true },
        ],
    },
    {
        name: 'test_prompt_with_embedded_resource',
        description: 'A prompt that embeds a resource',
        arguments: [{ name: 'resourceUri', description: 'URI of the resource to embed', required: true }],
    },
    { name: 'test_prompt_with_image', description: 'A prompt with an image' },
];

// Completion candidates per prompt argument and per template variable.
const PROMPT_COMPLETIONS = {
    test_prompt_with_arguments: {
        arg1: ['paris', 'park', 'party', 'test', 'testValue1'],
        arg2: ['world', 'wonder', 'testValue2'],
    },
    test_prompt_with_embedded_resource: { resourceUri: RESOURCES.map((r) => r.uri) },
};
const TEMPLATE_COMPLETIONS = { 'test://template/{id}/data': { id: ['1', '2', '3', '123'] } };

function text(t) {
    return { type: 'text', text: t };
}

function readResource(uri) {
    switch (uri) {
        case 'test://static-text':
            return { uri, mimeType: 'text/plain', text: 'This is the content of the static text resource.' };
        case 'test://static-binary':
            return { uri, mimeType: 'image/png', blob: PNG };
        case 'test://watched-resource':
            return { uri, mimeType: 'text/plain', text: 'This is the content of the watched resource.' };
    }
    const m = /^test:\/\/template\/([^/]+)\/data$/.exec(uri);
    if (m) {
        const id = decodeURIComponent(m[1]);
        return {
            uri,
            mimeType: 'application/json',
            text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }),
        };
    }
    throw new McpError(-32002, `Resource not found: ${uri}`, { uri });
}

// ------------------------------------------------------------------------------------------- per-session server

function newServer() {
    const server = new Server(
        { name: 'gigmcp-conformance-fixture', version: '1.0.0' },
        {
            capabilities: {
                tools: { listChanged: true },
                resources: { subscribe: true, listChanged: true },
                prompts: { listChanged: true },
                logging: {},
                completions: {},
            },
            instructions: 'Conformance fixture for the Gig\'MCP gateway tests.',
        },
    );
    const subscriptions = new Set();

    // A notification that belongs to the request being handled travels on that request's stream.
    const logMessage = async (extra, level, data) => {
        if (server.isMessageIgnored(level, extra.sessionId)) return;
        await extra.sendNotification({
            method: 'notifications/message',
            params: { level, logger: 'conformance-fixture', data },
        });
    };

    const needCapability = (name) => {
        if (!server.getClientCapabilities()?.[name]) {
            throw new McpError(ErrorCode.InvalidRequest, `The client did not declare the ${name} capability`);
        }
    };

    server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: TOOLS }));

    server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
        const args = request.params.arguments ?? {};
        switch (request.params.name) {
            case 'test_simple_text':
                return { content: [text('This is a simple text response for testing.')] };
            case 'test_image_content':
                return { content: [{ type: 'image', data: PNG, mimeType: 'image/png' }] };
            case 'test_audio_content':
                return { content: [{ type: 'audio', data: WAV, mimeType: 'audio/wav' }] };
            case 'test_embedded_resource':
                return {
                    content: [
                        {
                            type: 'resource',
                            resource: {
                                uri: 'test://embedded-resource',
                                mimeType: 'text/plain',
                                text: 'This is an embedded resource content.',
                            },
                        },
                    ],
                };
            case 'test_multiple_content_types':
                return {
                    content: [
                        text('Multiple content types test:'),
                        { type: 'image', data: PNG, mimeType: 'image/png' },
                        {
                            type: 'resource',
                            resource: {
                                uri: 'test://mixed-content-resource',
                                mimeType: 'application/json',
                                text: JSON.stringify({ test: 'data', value: 123 }),
                            },
                        },
                    ],
                };
            case 'test_tool_with_logging':
                await logMessage(extra, 'info', 'Tool execution started');
                await sleep(50);
                await logMessage(extra, 'info', 'Tool processing data');
                await sleep(50);
                await logMessage(extra, 'info', 'Tool execution completed');
                return { content: [text('Tool with logging executed successfully')] };
            case 'test_error_handling':
                return { isError: true, content: [text('This tool intentionally returns an error for testing')] };
            case 'test_tool_with_progress': {
                const token = extra._meta?.progressToken;
                for (const progress of [0, 50, 100]) {
                    if (progress > 0) await sleep(50);
                    if (token !== undefined) {
                        await extra.sendNotification({
                            method: 'notifications/progress',
                            params: { progressToken: token, progress, total: 100, message: `Progress ${progress}%` },
                        });
                    }
                }
                return { content: [text(`Progress tool completed (token: ${token ?? 'none'})`)] };
            }
            case 'test_sampling': {
                needCapability('sampling');
                const result = await extra.sendRequest(
                    {
                        method: 'sampling/createMessage',
                        params: {
                            messages: [{ role: 'user', content: text(String(args.prompt ?? '')) }],
                            maxTokens: 100,
                        },
                    },
                    CreateMessageResultSchema,
                );
                const reply = result.content?.type === 'text' ? result.content.text : JSON.stringify(result.content);
                return { content: [text(`LLM response: ${reply}`)] };
            }
            case 'test_elicitation': {
                needCapability('elicitation');
                const result = await extra.sendRequest(
                    {
                        method: 'elicitation/create',
                        params: {
                            message: String(args.message ?? ''),
                            requestedSchema: {
                                type: 'object',
                                properties: {
                                    username: { type: 'string', description: "User's response" },
                                    email: { type: 'string', description: "User's email address" },
                                },
                                required: ['username', 'email'],
                            },
                        },
                    },
                    ElicitResultSchema,
                );
                return {
                    content: [
                        text(`User response: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`),
                    ],
                };
            }
            case 'test_elicitation_sep1034_defaults': {
                needCapability('elicitation');
                const result = await extra.sendRequest(
                    {
                        method: 'elicitation/create',
                        params: {
                            message: 'Please review and update the form fields with defaults',
                            requestedSchema: {
                                type: 'object',
                                properties: {
                                    name: { type: 'string', description: 'User name', default: 'John Doe' },
                                    age: { type: 'integer', description: 'User age', default: 30 },
                                    score: { type: 'number', description: 'User score', default: 95.5 },
                                    status: {
                                        type: 'string',
                                        description: 'User status',
                                        enum: ['active', 'inactive', 'pending'],
                                        default: 'active',
                                    },
                                    verified: { type: 'boolean', description: 'Verification status', default: true },
                                },
                                required: [],
                            },
                        },
                    },
                    ElicitResultSchema,
                );
                return {
                    content: [
                        text(
                            `Elicitation completed: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`,
                        ),
                    ],
                };
            }
            case 'test_elicitation_sep1330_enums': {
                needCapability('elicitation');
                const result = await extra.sendRequest(
                    {
                        method: 'elicitation/create',
                        params: {
                            message: 'Please choose from each kind of enum',
                            requestedSchema: {
                                type: 'object',
                                properties: {
                                    untitledSingle: {
                                        type: 'string',
                                        description: 'Untitled single-select',
                                        enum: ['option1', 'option2', 'option3'],
                                    },
                                    titledSingle: {
                                        type: 'string',
                                        description: 'Titled single-select',
                                        oneOf: [
                                            { const: 'value1', title: 'First Option' },
                                            { const: 'value2', title: 'Second Option' },
                                            { const: 'value3', title: 'Third Option' },
                                        ],
                                    },
                                    legacyEnum: {
                                        type: 'string',
                                        description: 'Legacy titled enum',
                                        enum: ['opt1', 'opt2', 'opt3'],
                                        enumNames: ['Option One', 'Option Two', 'Option Three'],
                                    },
                                    untitledMulti: {
                                        type: 'array',
                                        description: 'Untitled multi-select',
                                        items: { type: 'string', enum: ['option1', 'option2', 'option3'] },
                                    },
                                    titledMulti: {
                                        type: 'array',
                                        description: 'Titled multi-select',
                                        items: {
                                            anyOf: [
                                                { const: 'value1', title: 'First Choice' },
                                                { const: 'value2', title: 'Second Choice' },
                                                { const: 'value3', title: 'Third Choice' },
                                            ],
                                        },
                                    },
                                },
                                required: [],
                            },
                        },
                    },
                    ElicitResultSchema,
                );
                return {
                    content: [
                        text(
                            `Elicitation completed: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`,
                        ),
                    ],
                };
            }
            case 'json_schema_2020_12_tool':
                return { content: [text(`Received: ${JSON.stringify(args)}`)] };
            case 'test_reconnection':
                await sleep(100);
                // Ends the response stream without the reply; the client resumes with Last-Event-ID and
                // gets the reply from the event store.
                extra.closeSSEStream?.();
                await sleep(300);
                return { content: [text('Reconnection test completed')] };
            default:
                throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${request.params.name}`);
        }
    });

    server.setRequestHandler(ListResourcesRequestSchema, async () => ({ resources: RESOURCES }));
    server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({ resourceTemplates: TEMPLATES }));
    server.setRequestHandler(ReadResourceRequestSchema, async (request) => ({
        contents: [readResource(request.params.uri)],
    }));
    // A subscribed resource "changes" once, shortly after the subscription; an unsubscribed one never does.
    server.setRequestHandler(SubscribeRequestSchema, async (request) => {
        const uri = request.params.uri;
        subscriptions.add(uri);
        setTimeout(() => {
            if (subscriptions.has(uri)) server.sendResourceUpdated({ uri }).catch(() => {});
        }, 100);
        return {};
    });
    server.setRequestHandler(UnsubscribeRequestSchema, async (request) => {
        subscriptions.delete(request.params.uri);
        return {};
    });

    server.setRequestHandler(ListPromptsRequestSchema, async () => ({ prompts: PROMPTS }));
    server.setRequestHandler(GetPromptRequestSchema, async (request) => {
        const args = request.params.arguments ?? {};
        switch (request.params.name) {
            case 'test_simple_prompt':
                return { messages: [{ role: 'user', content: text('This is a simple prompt for testing.') }] };
            case 'test_prompt_with_arguments':
                return {
                    messages: [
                        {
                            role: 'user',
                            content: text(`Prompt with arguments: arg1='${args.arg1 ?? ''}', arg2='${args.arg2 ?? ''}'`),
                        },
                    ],
                };
            case 'test_prompt_with_embedded_resource':
                return {
                    messages: [
                        {
                            role: 'user',
                            content: {
                                type: 'resource',
                                resource: {
                                    uri: String(args.resourceUri ?? 'test://example-resource'),
                                    mimeType: 'text/plain',
                                    text: 'Embedded resource content for testing.',
                                },
                            },
                        },
                        { role: 'user', content: text('Please process the embedded resource above.') },
                    ],
                };
            case 'test_prompt_with_image':
                return {
                    messages: [
                        { role: 'user', content: { type: 'image', data: PNG, mimeType: 'image/png' } },
                        { role: 'user', content: text('Please analyze the image above.') },
                    ],
                };
            default:
                throw new McpError(ErrorCode.InvalidParams, `Unknown prompt: ${request.params.name}`);
        }
    });

    server.setRequestHandler(CompleteRequestSchema, async (request) => {
        const { ref, argument } = request.params;
        let candidates = [];
        if (ref.type === 'ref/prompt') {
            candidates = PROMPT_COMPLETIONS[ref.name]?.[argument.name] ?? [];
        } else if (ref.type === 'ref/resource') {
            candidates = TEMPLATE_COMPLETIONS[ref.uri]?.[argument.name] ?? [];
        }
        const prefix = String(argument.value ?? '').toLowerCase();
        const values = candidates.filter((c) => c.toLowerCase().startsWith(prefix));
        return { completion: { values, total: values.length, hasMore: false } };
    });

    return server;
}

// ------------------------------------------------------------------------------------------- event store

// Keeps every event of every stream in memory (the fixture lives for one test run).
class MemoryEventStore {
    constructor() {
        this.events = new Map(); // eventId -> { streamId, message }
        this.order = []; // eventIds in the order they were stored
        this.counter = 0;
    }
    async storeEvent(streamId, message) {
        const eventId = `${streamId}_${++this.counter}`;
        this.events.set(eventId, { streamId, message });
        this.order.push(eventId);
        return eventId;
    }
    async getStreamIdForEventId(eventId) {
        return this.events.get(eventId)?.streamId;
    }
    async replayEventsAfter(lastEventId, { send }) {
        const last = this.events.get(lastEventId);
        if (!last) return '';
        let after = false;
        for (const eventId of this.order) {
            if (eventId === lastEventId) {
                after = true;
                continue;
            }
            const event = this.events.get(eventId);
            // Priming events are stored as empty objects; they are not messages to replay.
            if (after && event.streamId === last.streamId && Object.keys(event.message).length > 0) {
                await send(eventId, event.message);
            }
        }
        return last.streamId;
    }
}

// ------------------------------------------------------------------------------------------- HTTP

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

function hostnameOf(hostHeader) {
    try {
        return new URL(`http://${hostHeader}`).hostname.toLowerCase();
    } catch {
        return null;
    }
}

function rebindingRefusal(req) {
    const host = req.headers.host;
    if (!host || !LOOPBACK.has(hostnameOf(host))) return `Host not allowed: ${host ?? '(none)'}`;
    const origin = req.headers.origin;
    if (origin !== undefined) {
        let name = null;
        try {
            name = new URL(origin).hostname.toLowerCase();
        } catch {
            /* refused below */
        }
        if (!LOOPBACK.has(name)) return `Origin not allowed: ${origin}`;
    }
    return null;
}

function sendJsonError(res, status, code, message) {
    res.writeHead(status, { 'Content-Type': 'application/json' }).end(
        JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }),
    );
}

async function readJson(req) {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function isInitialize(body) {
    return !Array.isArray(body) && body && typeof body === 'object' && body.method === 'initialize';
}

const sessions = new Map(); // session id -> transport
const eventStore = new MemoryEventStore();

const httpServer = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://placeholder');
    if (debug) log(req.method, req.url, JSON.stringify(req.headers));
    if (url.pathname !== '/mcp') {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
        return;
    }
    const refusal = rebindingRefusal(req);
    if (refusal) {
        sendJsonError(res, 403, -32000, `Forbidden: ${refusal}`);
        return;
    }
    try {
        const sessionId = req.headers['mcp-session-id'];
        if (sessionId !== undefined) {
            const transport = sessions.get(sessionId);
            if (!transport) {
                sendJsonError(res, 404, -32001, 'Session not found');
                return;
            }
            await transport.handleRequest(req, res);
            return;
        }
        if (req.method !== 'POST') {
            sendJsonError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
            return;
        }
        let body;
        try {
            body = await readJson(req);
        } catch {
            sendJsonError(res, 400, -32700, 'Parse error');
            return;
        }
        if (!isInitialize(body)) {
            sendJsonError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
            return;
        }
        const transport = new StreamableHTTPServerTransport({
            sessionIdGenerator: () => randomUUID(),
            eventStore,
            retryInterval: 1000,
            onsessioninitialized: (id) => {
                sessions.set(id, transport);
                if (debug) log('session initialized', id);
            },
            onsessionclosed: (id) => {
                sessions.delete(id);
                if (debug) log('session closed', id);
            },
        });
        transport.onclose = () => {
            if (transport.sessionId) sessions.delete(transport.sessionId);
        };
        const server = newServer();
        await server.connect(transport);
        await transport.handleRequest(req, res, body);
    } catch (error) {
        log('error handling request:', error);
        if (!res.headersSent) sendJsonError(res, 500, -32603, 'Internal server error');
    }
});

httpServer.listen(port, '127.0.0.1', () => {
    console.log(`listening on http://127.0.0.1:${httpServer.address().port}/mcp`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
        for (const transport of sessions.values()) transport.close().catch(() => {});
        httpServer.close();
        process.exit(0);
    });
}
