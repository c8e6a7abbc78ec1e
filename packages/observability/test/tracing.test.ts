import { SpanKind, trace } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createTracing, extractTraceContext, traceIdOf } from '../src/index.ts';

const PARENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const traceparent = `00-${PARENT_TRACE}-00f067aa0ba902b7-01`;

describe('tracing', () => {
  it('continues a trusted caller trace, records the spans and injects the context downstream', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = createTracing({ serviceName: 'web-bff', exporter });
    const incoming = tracing.startIncoming('POST /graphql', { traceparent }, true, SpanKind.SERVER);
    const child = tracing.startChild('GET identity', incoming.context, SpanKind.CLIENT);
    const headers: Record<string, string> = {};
    tracing.inject(child.context, headers);
    child.span.end();
    incoming.span.end();
    await tracing.flush();
    expect(headers.traceparent).toMatch(new RegExp(`^00-${PARENT_TRACE}-[0-9a-f]{16}-01$`));
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.name)).toEqual(['GET identity', 'POST /graphql']);
    expect(new Set(spans.map((s) => s.spanContext().traceId))).toEqual(new Set([PARENT_TRACE]));
    expect(spans[0]?.parentSpanContext?.spanId).toBe(spans[1]?.spanContext().spanId);
    expect(spans[1]?.resource.attributes['service.name']).toBe('web-bff');
    await tracing.shutdown();
  });

  it('starts a new trace when the caller is not trusted', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = createTracing({ serviceName: 'web-bff', exporter });
    const incoming = tracing.startIncoming('POST /graphql', { traceparent }, false, SpanKind.SERVER);
    expect(traceIdOf(incoming.context)).toMatch(/^[0-9a-f]{32}$/);
    expect(traceIdOf(incoming.context)).not.toBe(PARENT_TRACE);
    incoming.span.end();
    await tracing.shutdown();
  });

  it('samples new traces by ratio and follows a trusted parent that was not sampled', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = createTracing({ serviceName: 'web-bff', exporter, sampleRatio: 0 });
    tracing.startIncoming('a', {}, true, SpanKind.SERVER).span.end();
    const unsampled = `00-${PARENT_TRACE}-00f067aa0ba902b7-00`;
    const followed = tracing.startIncoming('b', { traceparent: unsampled }, true, SpanKind.SERVER);
    followed.span.end();
    await tracing.flush();
    expect(exporter.getFinishedSpans()).toEqual([]);
    expect(traceIdOf(followed.context)).toBe(PARENT_TRACE);
    await tracing.shutdown();
  });

  it('is off without an endpoint yet still gives every request a trace id that travels', () => {
    const tracing = createTracing({ serviceName: 'billing' });
    expect(tracing.enabled).toBe(false);
    const fresh = tracing.startIncoming('x', {}, true, SpanKind.SERVER);
    const other = tracing.startIncoming('x', {}, true, SpanKind.SERVER);
    expect(traceIdOf(fresh.context)).toMatch(/^[0-9a-f]{32}$/);
    expect(traceIdOf(fresh.context)).not.toBe(traceIdOf(other.context));
    expect(fresh.span.isRecording()).toBe(false);
    const headers: Record<string, string> = {};
    tracing.inject(tracing.startChild('call', fresh.context, SpanKind.CLIENT).context, headers);
    expect(headers.traceparent).toContain(traceIdOf(fresh.context));
    const continued = tracing.startIncoming('y', { traceparent }, true, SpanKind.SERVER);
    expect(traceIdOf(continued.context)).toBe(PARENT_TRACE);
  });

  it('validates its options, naming the bad value', () => {
    expect(() => createTracing({ serviceName: '' })).toThrow(/serviceName.*""/);
    expect(() => createTracing({ serviceName: 'x', sampleRatio: 2 })).toThrow(/sampleRatio.*2/);
    expect(() => createTracing({ serviceName: 'x', endpoint: 'not a url' })).toThrow(/endpoint.*not a url/);
  });

  it('ignores malformed trace headers of any shape without throwing', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.array(fc.string(), { maxLength: 3 })),
        fc.oneof(fc.string(), fc.constant(undefined)),
        (parent, state) => {
          const context = extractTraceContext({ traceparent: parent, tracestate: state });
          const spanContext = trace.getSpanContext(context);
          if (spanContext) expect(spanContext.traceId).toMatch(/^[0-9a-f]{32}$/);
        },
      ),
      { numRuns: 500 },
    );
  });
});
