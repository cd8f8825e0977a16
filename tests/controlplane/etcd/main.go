// Command etcd runs a single-member etcd server for the test clusters.
//
// etcd publishes no binary in a reachable registry either, so this wraps the
// server's embed package at the version that k8s.io/kubernetes itself pins,
// which keeps etcd and kube-apiserver matched. Only the flags the harness
// needs are exposed.
package main

import (
	"flag"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	dataDir := flag.String("data-dir", "", "directory for the member's data")
	clientURL := flag.String("listen-client-urls", "http://127.0.0.1:2379", "client URL to serve on")
	peerURL := flag.String("listen-peer-urls", "http://127.0.0.1:2380", "peer URL to serve on")
	flag.Parse()
	if *dataDir == "" {
		log.Fatal("--data-dir is required")
	}

	client, err := url.Parse(*clientURL)
	if err != nil {
		log.Fatalf("--listen-client-urls: %v", err)
	}
	peer, err := url.Parse(*peerURL)
	if err != nil {
		log.Fatalf("--listen-peer-urls: %v", err)
	}

	cfg := embed.NewConfig()
	cfg.Name = "default"
	cfg.Dir = *dataDir
	cfg.ListenClientUrls = []url.URL{*client}
	cfg.AdvertiseClientUrls = []url.URL{*client}
	cfg.ListenPeerUrls = []url.URL{*peer}
	cfg.AdvertisePeerUrls = []url.URL{*peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "warn"
	// Test clusters are thrown away, so durability is traded for speed.
	cfg.UnsafeNoFsync = true

	server, err := embed.StartEtcd(cfg)
	if err != nil {
		log.Fatalf("starting etcd: %v", err)
	}
	defer server.Close()

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-server.Server.ReadyNotify():
		log.Printf("etcd ready, serving clients on %s", client)
	case sig := <-signals:
		log.Printf("stopping on %s before ready", sig)
		return
	}
	select {
	case err := <-server.Err():
		log.Fatalf("etcd failed: %v", err)
	case sig := <-signals:
		log.Printf("stopping on %s", sig)
	}
}
