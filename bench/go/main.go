// Go peers of the side-by-side benchmark (bench/peers.ts): one binary, one contender per run.
//
//	kubeloop-bench-go <raw|informer|controller> -config F -namespace NS -objects N -events M [-proto]
//
// It syncs the ConfigMaps of NS, prints {"phase":"synced"}, then counts M update events (the
// harness patches; each patch carries data.sent, the sender's clock in ms) and prints
// {"phase":"done","p50":…,"p99":…,"ms":…} (latency from send to receipt; first counted event →
// last), then exits. Memory and
// CPU are read by the harness from /proc, the same way for every contender.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

var (
	kubeconfig = flag.String("config", "", "kubeconfig file")
	namespace  = flag.String("namespace", "", "namespace of the ConfigMaps")
	objects    = flag.Int("objects", 0, "ConfigMaps expected at sync")
	events     = flag.Int("events", 0, "update events to count")
	proto      = flag.Bool("proto", false, "protobuf instead of JSON")
)

type counter struct {
	mu        sync.Mutex
	latencies []float64
	first     time.Time
	last      time.Time
	cpuFirst  time.Duration
	cpuLast   time.Duration
	done      chan struct{}
}

func (c *counter) seen(sent string) {
	now := float64(time.Now().UnixNano()) / 1e6
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.latencies) >= *events {
		return
	}
	if len(c.latencies) == 0 {
		c.first = time.Now()
		c.cpuFirst = cpuTime()
	}
	if ms, err := strconv.ParseFloat(sent, 64); err == nil {
		c.latencies = append(c.latencies, now-ms)
	} else {
		c.latencies = append(c.latencies, -1)
	}
	if len(c.latencies) == *events {
		c.last = time.Now()
		c.cpuLast = cpuTime()
		close(c.done)
	}
}

// cpuTime is the process's user + system CPU time (all threads).
func cpuTime() time.Duration {
	var u syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

func say(v map[string]any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func (c *counter) finish() {
	<-c.done
	l := append([]float64(nil), c.latencies...)
	sort.Float64s(l)
	at := func(q float64) float64 { return l[int(q*float64(len(l)-1))] }
	say(map[string]any{"phase": "done", "count": len(l), "p50": at(0.5), "p99": at(0.99), "ms": float64(c.last.Sub(c.first).Microseconds()) / 1000, "cpuMicros": (c.cpuLast - c.cpuFirst).Microseconds()})
	select {} // stay: the harness reads this process's memory and CPU, then kills it
}

func restConfig() *rest.Config {
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		panic(err)
	}
	cfg.QPS, cfg.Burst = -1, 0 // no client-side rate limit, as every contender
	// The content type is set either way: with none set, client-go 0.37's generated clients and
	// controller-runtime 0.25 (for built-in kinds) ask for protobuf, so a "JSON" contender that
	// left it empty spoke protobuf to the API server.
	if *proto {
		cfg.ContentType = runtime.ContentTypeProtobuf
		cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	} else {
		cfg.ContentType = runtime.ContentTypeJSON
		cfg.AcceptContentTypes = runtime.ContentTypeJSON
	}
	return cfg
}

func synced(n int) {
	if n != *objects {
		panic(fmt.Sprintf("synced %d objects, expected %d", n, *objects))
	}
	say(map[string]any{"phase": "synced"})
}

func main() {
	flag.CommandLine.Parse(os.Args[2:])
	if v := os.Getenv("BENCH_KLOG_V"); v != "" { // debugging: client-go's own logs
		fs := flag.NewFlagSet("klog", flag.ExitOnError)
		klog.InitFlags(fs)
		_ = fs.Set("v", v)
	}
	c := &counter{done: make(chan struct{})}
	switch os.Args[1] {
	case "raw":
		raw(c)
	case "informer":
		informer(c)
	case "controller":
		controller(c)
	default:
		panic("unknown mode " + os.Args[1])
	}
	c.finish()
}

// raw: the floor. One list, decoded; then the watch stream's lines split and counted, each line's
// data.sent found without decoding the object (a byte search), as the Node raw reader does.
func raw(c *counter) {
	cfg := restConfig()
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		panic(err)
	}
	httpClient := &http.Client{Transport: transport}
	base := cfg.Host + "/api/v1/namespaces/" + *namespace + "/configmaps"
	res, err := httpClient.Get(base)
	if err != nil {
		panic(err)
	}
	var list struct {
		Metadata struct{ ResourceVersion string } `json:"metadata"`
		Items    []json.RawMessage                `json:"items"`
	}
	if err := json.NewDecoder(res.Body).Decode(&list); err != nil {
		panic(err)
	}
	res.Body.Close()
	synced(len(list.Items))
	go func() {
		res, err := httpClient.Get(base + "?watch=1&allowWatchBookmarks=false&resourceVersion=" + list.Metadata.ResourceVersion)
		if err != nil {
			panic(err)
		}
		r := bufio.NewReaderSize(res.Body, 1<<20)
		for {
			line, err := r.ReadSlice('\n')
			if len(line) > 0 {
				c.seen(sentOf(line))
			}
			if err == io.EOF {
				return
			}
			if err != nil && err != bufio.ErrBufferFull {
				panic(err)
			}
		}
	}()
}

// sentOf finds "sent":"<digits>" in a raw watch line.
func sentOf(line []byte) string {
	key := []byte(`"sent":"`)
	for i := 0; i+len(key) < len(line); i++ {
		if string(line[i:i+len(key)]) == string(key) {
			j := i + len(key)
			k := j
			for k < len(line) && line[k] != '"' {
				k++
			}
			return string(line[j:k])
		}
	}
	return ""
}

// informer: a client-go shared informer on the namespace's ConfigMaps, an update handler.
func informer(c *counter) {
	cs, err := kubernetes.NewForConfig(restConfig())
	if err != nil {
		panic(err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(*namespace))
	inf := factory.Core().V1().ConfigMaps().Informer()
	// Every update counts, before "synced" too: in the replay the stream floods in at once (live,
	// the harness patches only after "synced").
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { c.seen(obj.(*corev1.ConfigMap).Data["sent"]) },
	})
	stop := make(chan struct{})
	factory.Start(stop)
	if !cache.WaitForCacheSync(stop, inf.HasSynced) {
		panic("no sync")
	}
	synced(len(inf.GetStore().ListKeys()))
}

// controller: a controller-runtime manager with a no-op reconciler For(ConfigMap).
func controller(c *counter) {
	ctrl.SetLogger(discardLogger())
	mgr, err := ctrl.NewManager(restConfig(), ctrl.Options{
		Metrics:                server.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  ctrlcache.Options{DefaultNamespaces: map[string]ctrlcache.Config{*namespace: {}}},
	})
	if err != nil {
		panic(err)
	}
	count := predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		c.seen(e.ObjectNew.(*corev1.ConfigMap).Data["sent"])
		return true
	}}
	err = ctrl.NewControllerManagedBy(mgr).For(&corev1.ConfigMap{}).WithEventFilter(count).
		Complete(reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
			var cm corev1.ConfigMap
			_ = mgr.GetClient().Get(ctx, req.NamespacedName, &cm)
			return reconcile.Result{}, nil
		}))
	if err != nil {
		panic(err)
	}
	go func() {
		if err := mgr.Start(context.Background()); err != nil {
			panic(err)
		}
	}()
	if !mgr.GetCache().WaitForCacheSync(context.Background()) {
		panic("no sync")
	}
	var list corev1.ConfigMapList
	if err := mgr.GetClient().List(context.Background(), &list, client.InNamespace(*namespace)); err != nil {
		panic(err)
	}
	synced(len(list.Items))
}
