package procnode_test

import (
	"context"
	"errors"
	"runtime"
	"testing"

	"github.com/procactor/procactor/procnode"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// metricPoints collects once and returns every int64 and float64 data point of
// procnode's meter, by metric name.
func metricPoints(t *testing.T, r *sdkmetric.ManualReader) map[string][]metricdata.DataPoint[float64] {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string][]metricdata.DataPoint[float64]{}
	add := func(name string, attrs attribute.Set, v float64) {
		out[name] = append(out[name], metricdata.DataPoint[float64]{Attributes: attrs, Value: v})
	}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != procnode.MeterName {
			continue
		}
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					add(m.Name, p.Attributes, float64(p.Value))
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					add(m.Name, p.Attributes, float64(p.Value))
				}
			case metricdata.Sum[float64]:
				for _, p := range d.DataPoints {
					add(m.Name, p.Attributes, p.Value)
				}
			default:
				t.Fatalf("%s: unexpected aggregation %T", m.Name, m.Data)
			}
		}
	}
	return out
}

// metricValue returns the value of the point of name whose attributes include
// want, and whether there is one.
func metricValue(ps map[string][]metricdata.DataPoint[float64], name string, want ...attribute.KeyValue) (float64, bool) {
next:
	for _, p := range ps[name] {
		for _, kv := range want {
			if v, ok := p.Attributes.Value(kv.Key); !ok || v != kv.Value {
				continue next
			}
		}
		return p.Value, true
	}
	return 0, false
}

// TestMetrics: the user's MeterProvider gets the tree's figures under the
// documented names, the child's own (it answered its snapshot) included;
// unregistering stops them.
func TestMetrics(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	p := spawn(t, n, "test.echo", procnode.WithName("worker"))
	request(t, n, p.PID(), "one")
	request(t, n, p.PID(), "two")
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	reg, err := n.RegisterMetrics(mp)
	if err != nil {
		t.Fatal(err)
	}

	child := attribute.String("procactor.address", p.Address())
	peer := attribute.String("procactor.peer", p.Address())
	user := attribute.String("procactor.lane", "user")
	var ps map[string][]metricdata.DataPoint[float64]
	snapWait(t, "two requests and their replies counted", func() bool {
		ps = metricPoints(t, reader)
		out, _ := metricValue(ps, procnode.MetricLinkMessages, peer, user, attribute.String("procactor.direction", "out"))
		in, _ := metricValue(ps, procnode.MetricLinkMessages, peer, user, attribute.String("procactor.direction", "in"))
		return out >= 2 && in >= 2
	})
	for _, c := range []struct {
		name  string
		attrs []attribute.KeyValue
		ok    func(float64) bool
	}{
		{procnode.MetricLinkBytes, []attribute.KeyValue{peer, user, attribute.String("procactor.direction", "out")}, func(v float64) bool { return v > 0 }},
		{procnode.MetricLinkDeadLetters, []attribute.KeyValue{peer, attribute.String("procactor.node", n.Address())}, func(v float64) bool { return v == 0 }},
		{procnode.MetricLinkQueued, []attribute.KeyValue{peer, attribute.String("procactor.queue", "held")}, func(v float64) bool { return v == 0 }},
		{procnode.MetricProcessUp, []attribute.KeyValue{child, attribute.String("procactor.kind", "test.echo"), attribute.String("procactor.name", "worker")}, func(v float64) bool { return v == 1 }},
		{procnode.MetricProcessRestarts, []attribute.KeyValue{child}, func(v float64) bool { return v == 0 }},
		{procnode.MetricProcessIncarnation, []attribute.KeyValue{child}, func(v float64) bool { return v == 0 }},
		{procnode.MetricProcessGoroutines, []attribute.KeyValue{child}, func(v float64) bool { return v > 0 }},
		{procnode.MetricSnapshotUnanswered, []attribute.KeyValue{attribute.String("procactor.address", n.Address())}, func(v float64) bool { return v == 0 }},
	} {
		if v, ok := metricValue(ps, c.name, c.attrs...); !ok || !c.ok(v) {
			t.Errorf("%s %v: got %v (present %v)", c.name, c.attrs, v, ok)
		}
	}
	if runtime.GOOS == "linux" {
		for _, addr := range []string{n.Address(), p.Address()} {
			a := attribute.String("procactor.address", addr)
			if v, ok := metricValue(ps, procnode.MetricProcessRSS, a); !ok || v <= 0 {
				t.Errorf("%s of %s: %v, %v", procnode.MetricProcessRSS, addr, v, ok)
			}
			if _, ok := metricValue(ps, procnode.MetricProcessCPUTime, a, attribute.String("cpu.mode", "user")); !ok {
				t.Errorf("%s of %s missing", procnode.MetricProcessCPUTime, addr)
			}
		}
	}

	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
	if ps := metricPoints(t, reader); len(ps) != 0 {
		t.Fatalf("after Unregister: %d metrics still reported", len(ps))
	}
	if err := n.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := n.RegisterMetrics(mp); !errors.Is(err, procnode.ErrNodeClosed) {
		t.Fatalf("RegisterMetrics on a closed node: %v; want ErrNodeClosed", err)
	}
}
