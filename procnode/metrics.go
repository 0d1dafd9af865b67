package procnode

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// MeterName is the instrumentation scope of the meter RegisterMetrics asks
// the MeterProvider for.
const MeterName = "github.com/procactor/procactor/procnode"

// Metric names and attributes, as RegisterMetrics exports them. Every
// figure comes from one Snapshot per collection, so the tree's
// grandchildren (asked over each link) are exported by the top node too;
// link figures are counted from the parent's side of each link.
//
//	procactor.link.messages      counter   {message}  messages that crossed a link
//	procactor.link.bytes         counter   By         their encoded bytes
//	    attributes: procactor.node (the parent's address), procactor.peer
//	    (the child's), procactor.direction ("in": from the child, "out"),
//	    procactor.lane ("user", "system")
//	procactor.link.dead_letters  counter   {message}  messages that became dead letters at a link
//	procactor.link.queued        gauge     {message}  messages waiting in a link,
//	procactor.link.queued_bytes  gauge     By         and their bytes
//	    attributes: procactor.node, procactor.peer, procactor.queue
//	    ("stream": for the writer; "held": for the link to come up;
//	    "retained": sent, not yet acknowledged)
//	procactor.process.restarts     counter {restart}  restarts of a process actor
//	procactor.process.incarnation  gauge   1          its OS process's restart count
//	procactor.process.up           gauge   1          1 while its state is "up", else 0
//	    attributes: procactor.address, procactor.kind, procactor.name (when named)
//	procactor.process.memory.rss   gauge   By         resident set size (Linux)
//	procactor.process.cpu.time     counter s          CPU time (Linux); cpu.mode "user", "system"
//	procactor.process.goroutines   gauge   {goroutine} as the process itself reports (a node that answered)
//	    attributes: procactor.address (the root's too)
//	procactor.snapshot.unanswered  gauge   {process}  children that did not answer the last collection's snapshot
const (
	MetricLinkMessages       = "procactor.link.messages"       // messages per link, lane and direction
	MetricLinkBytes          = "procactor.link.bytes"          // their bytes
	MetricLinkDeadLetters    = "procactor.link.dead_letters"   // dead letters at a link
	MetricLinkQueued         = "procactor.link.queued"         // messages waiting, per queue
	MetricLinkQueuedBytes    = "procactor.link.queued_bytes"   // their bytes
	MetricProcessRestarts    = "procactor.process.restarts"    // restarts of a process actor
	MetricProcessIncarnation = "procactor.process.incarnation" // its OS process's restart count
	MetricProcessUp          = "procactor.process.up"          // 1 while it is up
	MetricProcessRSS         = "procactor.process.memory.rss"  // resident set size
	MetricProcessCPUTime     = "procactor.process.cpu.time"    // CPU time, by mode
	MetricProcessGoroutines  = "procactor.process.goroutines"  // goroutines, as the process reports
	MetricSnapshotUnanswered = "procactor.snapshot.unanswered" // children that did not answer
)

// DefaultMetricsTimeout bounds the snapshot of one collection when the
// collection's context has no deadline.
const DefaultMetricsTimeout = 500 * time.Millisecond

// metricInstruments are the instruments RegisterMetrics makes.
type metricInstruments struct {
	linkMsgs, linkBytes, linkDead, restarts metric.Int64ObservableCounter
	queued, queuedBytes                     metric.Int64ObservableGauge
	incarnation, up, rss, goroutines        metric.Int64ObservableGauge
	unanswered                              metric.Int64ObservableGauge
	cpu                                     metric.Float64ObservableCounter
}

// RegisterMetrics exports the node's process tree through OpenTelemetry,
// using mp as it is (protoactor's own metrics hook, which takes the global
// meter and adds to every message's cost, is not involved). The instruments
// are asynchronous: nothing is counted on the message path beyond the
// links' own counters; each collection takes one Snapshot, bounded by the
// collection's context (DefaultMetricsTimeout when it has no deadline).
// See MetricLinkMessages and the names that follow it for what is
// exported. Unregister the returned Registration to stop; closing the node
// does too. Errors: the meter's, ErrNodeClosed.
func (n *Node) RegisterMetrics(mp metric.MeterProvider) (metric.Registration, error) {
	m := mp.Meter(MeterName)
	var in metricInstruments
	var errs []error
	c := func(name, desc, unit string) metric.Int64ObservableCounter {
		i, err := m.Int64ObservableCounter(name, metric.WithDescription(desc), metric.WithUnit(unit))
		errs = append(errs, err)
		return i
	}
	g := func(name, desc, unit string) metric.Int64ObservableGauge {
		i, err := m.Int64ObservableGauge(name, metric.WithDescription(desc), metric.WithUnit(unit))
		errs = append(errs, err)
		return i
	}
	in.linkMsgs = c(MetricLinkMessages, "Messages that crossed a link.", "{message}")
	in.linkBytes = c(MetricLinkBytes, "Encoded bytes of the messages that crossed a link.", "By")
	in.linkDead = c(MetricLinkDeadLetters, "Messages that became dead letters at a link.", "{message}")
	in.restarts = c(MetricProcessRestarts, "Restarts of a process actor.", "{restart}")
	in.queued = g(MetricLinkQueued, "Messages waiting in a link.", "{message}")
	in.queuedBytes = g(MetricLinkQueuedBytes, "Bytes of the messages waiting in a link.", "By")
	in.incarnation = g(MetricProcessIncarnation, "Restart count of a process actor's OS process.", "1")
	in.up = g(MetricProcessUp, "1 while a process actor is up.", "1")
	in.rss = g(MetricProcessRSS, "Resident set size of a process.", "By")
	in.goroutines = g(MetricProcessGoroutines, "Goroutines of a process.", "{goroutine}")
	in.unanswered = g(MetricSnapshotUnanswered, "Children that did not answer a snapshot.", "{process}")
	cpu, err := m.Float64ObservableCounter(MetricProcessCPUTime, metric.WithDescription("CPU time of a process."), metric.WithUnit("s"))
	errs = append(errs, err)
	in.cpu = cpu
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	reg, err := m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, DefaultMetricsTimeout)
			defer cancel()
		}
		s := n.Snapshot(ctx)
		in.observe(o, &s)
		return nil
	}, in.linkMsgs, in.linkBytes, in.linkDead, in.restarts, in.queued, in.queuedBytes,
		in.incarnation, in.up, in.rss, in.goroutines, in.unanswered, in.cpu)
	if err != nil {
		return nil, err
	}
	if !n.extras.addRegistration(reg) {
		_ = reg.Unregister()
		return nil, ErrNodeClosed
	}
	return reg, nil
}

// observe reports one snapshot, its descendants included.
func (in *metricInstruments) observe(o metric.Observer, s *Snapshot) {
	self := metric.WithAttributes(attribute.String("procactor.address", s.Address))
	in.observeProc(o, s.Address, &s.Proc)
	o.ObserveInt64(in.goroutines, int64(s.Goroutines), self)
	unanswered := 0
	for i := range s.Children {
		c := &s.Children[i]
		in.observeLink(o, s.Address, &c.Link)
		attrs := []attribute.KeyValue{attribute.String("procactor.address", c.Address), attribute.String("procactor.kind", c.Kind)}
		if c.Name != "" {
			attrs = append(attrs, attribute.String("procactor.name", c.Name))
		}
		who := metric.WithAttributes(attrs...)
		o.ObserveInt64(in.restarts, int64(c.Restarts), who)
		o.ObserveInt64(in.incarnation, int64(c.Incarnation), who)
		up := int64(0)
		if c.State == stateUp.String() {
			up = 1
		}
		o.ObserveInt64(in.up, up, who)
		if c.Tree != nil {
			in.observe(o, c.Tree)
			continue
		}
		unanswered++
		// Not answered: what the parent read of its process is all there is.
		in.observeProc(o, c.Address, &c.Proc)
	}
	for i := range s.Links {
		in.observeLink(o, s.Address, &s.Links[i])
	}
	o.ObserveInt64(in.unanswered, int64(unanswered), self)
}

func (in *metricInstruments) observeProc(o metric.Observer, address string, p *ProcStats) {
	if p.Error != "" {
		return
	}
	addr := attribute.String("procactor.address", address)
	o.ObserveInt64(in.rss, int64(p.RSS), metric.WithAttributes(addr))
	o.ObserveFloat64(in.cpu, p.CPUUser.Seconds(), metric.WithAttributes(addr, attribute.String("cpu.mode", "user")))
	o.ObserveFloat64(in.cpu, p.CPUSystem.Seconds(), metric.WithAttributes(addr, attribute.String("cpu.mode", "system")))
}

func (in *metricInstruments) observeLink(o metric.Observer, node string, l *LinkInfo) {
	base := []attribute.KeyValue{attribute.String("procactor.node", node), attribute.String("procactor.peer", l.Address)}
	with := func(kv ...attribute.KeyValue) metric.MeasurementOption {
		return metric.WithAttributes(append(append([]attribute.KeyValue(nil), base...), kv...)...)
	}
	inbound, outbound := attribute.String("procactor.direction", "in"), attribute.String("procactor.direction", "out")
	for _, lane := range []struct {
		name string
		t    *LaneTraffic
	}{{"user", &l.User}, {"system", &l.System}} {
		ln := attribute.String("procactor.lane", lane.name)
		o.ObserveInt64(in.linkMsgs, int64(lane.t.MsgsIn), with(inbound, ln))
		o.ObserveInt64(in.linkMsgs, int64(lane.t.MsgsOut), with(outbound, ln))
		o.ObserveInt64(in.linkBytes, int64(lane.t.BytesIn), with(inbound, ln))
		o.ObserveInt64(in.linkBytes, int64(lane.t.BytesOut), with(outbound, ln))
	}
	o.ObserveInt64(in.linkDead, int64(l.DeadLetters), with())
	for _, q := range []struct {
		name       string
		msgs, size int
	}{{"stream", l.Queued, l.QueuedBytes}, {"held", l.Held, l.HeldBytes}, {"retained", l.Retained, l.RetainedBytes}} {
		kind := attribute.String("procactor.queue", q.name)
		o.ObserveInt64(in.queued, int64(q.msgs), with(kind))
		o.ObserveInt64(in.queuedBytes, int64(q.size), with(kind))
	}
}
