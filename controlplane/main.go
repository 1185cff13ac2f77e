// Command kubeloop-controlplane is one multi-call binary holding the upstream components the
// local control plane needs. The first argument picks the component;
// the rest are passed to upstream's own entry point unchanged, so every flag works
// exactly as in the released binaries.
//
//	kubeloop-controlplane etcd --data-dir ...
//	kubeloop-controlplane kube-apiserver --etcd-servers ...
//	kubeloop-controlplane kube-controller-manager --kubeconfig ...
//	kubeloop-controlplane kube-scheduler --kubeconfig ...
//	kubeloop-controlplane kwok --kubeconfig ...   (simulated nodes: sigs.k8s.io/kwok)
//	kubeloop-controlplane version
//
// Like busybox, it also answers to the component's name: a symlink named `etcd` or
// `kube-apiserver` pointing at it runs that component, so a directory of such links is a
// KUBEBUILDER_ASSETS-style directory of prebuilt binaries.
package main

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	_ "time/tzdata" // CronJob time zones, as upstream's mains do

	"github.com/spf13/pflag"

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/component-base/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	nodefast "sigs.k8s.io/kwok/kustomize/stage/node/fast"
	nodeheartbeat "sigs.k8s.io/kwok/kustomize/stage/node/heartbeat-with-lease"
	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
	kwokconfig "sigs.k8s.io/kwok/pkg/config"
	kwokcmd "sigs.k8s.io/kwok/pkg/kwok/cmd"
	kwoklog "sigs.k8s.io/kwok/pkg/log"
	"sigs.k8s.io/kwok/pkg/utils/signals"
)

func main() {
	component := filepath.Base(os.Args[0])
	if !isComponent(component) {
		if len(os.Args) < 2 {
			usage()
			os.Exit(2)
		}
		component = os.Args[1]
		// Each upstream command reads os.Args itself; make it look like it was run directly.
		os.Args = append([]string{component}, os.Args[2:]...)
	}
	switch component {
	case "etcd":
		etcdmain.Main(os.Args)
	case "kube-apiserver":
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "kube-controller-manager":
		os.Exit(cli.Run(controllermanager.NewControllerManagerCommand()))
	case "kube-scheduler":
		os.Exit(cli.Run(scheduler.NewSchedulerCommand()))
	case "kwok":
		os.Exit(runKwok())
	case "version":
		fmt.Println(version.Get().GitVersion)
	default:
		usage()
		os.Exit(2)
	}
}

func isComponent(name string) bool {
	return name == "etcd" || name == "kube-apiserver" || name == "kube-controller-manager" || name == "kube-scheduler" || name == "kwok"
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kubeloop-controlplane etcd|kube-apiserver|kube-controller-manager|kube-scheduler|kwok|version [flags...]")
}

// defaultStages are the stages kwokctl gives a cluster (KWOK's own files, embedded by its
// packages): nodes initialized and kept Ready with a Lease heartbeat; pods made Running and
// Ready, Completed when a Job's, and removed once deleted.
var defaultStages = []string{nodefast.DefaultNodeInit, nodeheartbeat.DefaultNodeHeartbeatWithLease, podfast.DefaultPodReady, podfast.DefaultPodComplete, podfast.DefaultPodDelete, podRunningFailed}

// podRunningFailed is KWOK's chaos stage that fails a Running Pod labelled
// pod-container-running-failed.stage.kwok.x-k8s.io=true (kwok-stages/README.md).
//
//go:embed kwok-stages/pod-container-running-failed.yaml
var podRunningFailed string

// runKwok runs KWOK's controller as its own main does. Without a --config of its own, the
// default stages are written to a file beside the kubeconfig and given as --config.
func runKwok() int {
	if !hasFlag(os.Args[1:], "--config") {
		dir, err := os.MkdirTemp("", "kubeloop-kwok-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "kwok: cannot write its stages:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		file := filepath.Join(dir, "stages.yaml")
		if err := os.WriteFile(file, []byte(strings.Join(defaultStages, "\n---\n")), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, "kwok: cannot write its stages:", err)
			return 1
		}
		os.Args = append(os.Args[:1], append([]string{"--config=" + file}, os.Args[1:]...)...)
	}
	flagset := pflag.NewFlagSet("global", pflag.ContinueOnError)
	flagset.ParseErrorsAllowlist.UnknownFlags = true
	flagset.Usage = func() {}
	ctx := signals.SetupSignalContext()
	ctx, logger := kwoklog.InitFlags(ctx, flagset)
	ctx, err := kwokconfig.InitFlags(ctx, flagset)
	if err != nil {
		_, _ = os.Stderr.Write([]byte(flagset.FlagUsages()))
		logger.Error("Init config flags", "err", err)
		return 1
	}
	command := kwokcmd.NewCommand(ctx)
	// Kubernetes' components register a global --version flag (component-base's verflag) that
	// cobra would take for its own bool one and refuse; `kubeloop-controlplane version` says it.
	command.Version = ""
	command.PersistentFlags().AddFlagSet(flagset)
	if err := command.ExecuteContext(ctx); err != nil {
		logger.Error("Execute exit", "err", err)
		return 1
	}
	return 0
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}
