// Command bench is procactor's measuring instrument: `go run ./bench` runs a set of
// scenarios against several systems in one run and prints a table in which every
// figure is also read as a ratio to a baseline measured at the same moment on the
// same machine. A plain run (3 repetitions, shorter cells) takes about three
// minutes on a 2-core machine and prints a progress line per scenario; -full
// (5 repetitions, longer cells, about ten minutes) makes the README's table;
// -quick runs the scenarios marked quick in under a minute.
//
// # What it owns
//
// The scenarios (scenarios.go): rtt_64b, rtt_1k, rtt_64k (sequential
// request/response; p50, p99, p99.9 in µs from an HDR histogram), oneway_64b and
// oneway_struct (pipelined one-way messages per second, counted by the receiver,
// which confirms the count at the end so that nothing is counted that did not
// arrive), large_64m (one 64 MiB message sent and acknowledged, MB/s), fanout_N
// (one parent, N peers, aggregate one-way rate), spawn_cold (start of a peer to
// its first reply, p50 in ms), spawn_warm (a pre-started peer taken from a
// pool to its first reply, procnode.Pool; read against the same system's
// spawn_cold in the same repetition; n/a for systems without a pool) and
// idle_rss (the resident memory, VmRSS, of a peer process after one request
// and 1 s idle; at most 2 repetitions; n/a for peers that are not child
// processes).
//
// The baseline systems, each in its own file: raw_pipe (the denominator of every
// ratio: two pipes through *os.File and the netpoller), raw_pipe_blocking
// (blocking syscalls on locked threads), raw_pipe_poll (raw_pipe whose reads
// poll for up to procactor's spin window before they sleep, in the round-trip,
// one-way and large scenarios only), raw_socketpair, protoactor_inproc (two
// actors of one protoactor-go system), protoactor_grpc (protoactor-go remote over
// gRPC on 127.0.0.1) and goplugin (hashicorp/go-plugin, net/rpc). Package reach
// enters as reach (the bench is a reach root B; the echo runs in a child
// process of another root A, asked across the tunnel: protoactor_grpc's
// round trip plus a pipe hop each way) and reach_root (the echo at A's
// root, through the same tunnel), rtt scenarios only; the table then prints
// their p50 ratios over protoactor_grpc of the same repetitions, as does the
// JSON (rtt_64b_p50_reach_over_protoactor_grpc...).
//
// The method against noise (harness.go, stats.go): these machines are shared
// 2-core boxes whose raw pipe p50 moves by 2× between repetitions. Systems run
// interleaved: for each scenario and each repetition every system runs once,
// starting from a different system each time, each cell on a fresh peer. A ratio is
// taken within one repetition and the table shows the median over repetitions
// with its min–max; a figure is the median of its repetitions.
//
// The output (report.go, plot.go): the table on stdout, a progress line per
// scenario on stderr, -json FILE with machine, results, ratios and their spread,
// -svg FILE with the rtt_64b percentile curves, drawn by bench/chart (go
// run): the bench binary must not link gonum/plot, whose package init reads
// 4.5 MB of fonts in every child it re-executes.
//
// It must not know the internals of mailbox/, actor/ or procnode/: procactor
// enters the table as one more system, through the same interface as the
// baselines.
//
// # Adding a system
//
// A system is one file whose init calls registerSystem; see system.go:
//
//	type system interface {
//		name() string
//		start(ctx context.Context, cfg linkConfig) (link, error)
//	}
//
//	type link interface {
//		request(p []byte) error               // send p, wait for its echo
//		oneway(p []byte, n int) error         // send n, wait for the peer's count of n
//		onewayRecords(r *Record, n int) error // the same with a struct, system's own codec
//		close() error                         // stop the peer, wait for it
//	}
//
// start brings up one peer per call (the harness starts N of them for fanout_N
// and times start plus the first request for spawn_cold); cfg.maxMessage says how
// large the cell's payloads get, to size buffers and limits. A cell the system
// cannot do returns notApplicable(reason) and shows as "n/a: reason". The system
// named "procactor" is the subject: once registered, the JSON gains
// rtt_64b_p50_protoactor_grpc_over_procactor, oneway_64b_procactor_over_protoactor_grpc
// and the like for every other contender, and the table a "procactor gain" column.
// Systems named "procactor_*" (variants) are listed right after it.
//
// # Child processes
//
// Peers that are processes are re-executions of this binary (os.Executable) with
// PROCACTOR_BENCH_ROLE naming a role registered with registerRole; runChildRole,
// the first call in main (and in TestMain), runs the role and exits. procnode.Main
// goes right before it. Children get Pdeathsig=SIGKILL and their own process group
// on Linux, exit on EOF of their link (raw systems), stdin (protoactor_grpc) or a
// lifeline pipe on fd 3 (goplugin, whose stdin go-plugin takes), and are tracked
// so that every exit path, Ctrl-C included, kills and waits for them.
//
// A failure case: when a child dies in the middle of a cell, the link's next read
// fails, the repetition is recorded as an error (shown in the table and the JSON,
// exit status 1), its figures are left out of the medians and ratios, and the run
// goes on with the next cell.
package main
