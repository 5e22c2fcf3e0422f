package main

import (
	"os"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/keymint/keymint/vault/etcdtest"
)

// etcd [MEMBERS] starts a real etcd cluster (one member unless told) for
// the script, on loopback, and sets $ETCD to its endpoints joined by commas,
// as an etcd:// URL takes them. The cluster runs with raised transaction
// limits, which $ETCD_LIMITS holds as the settings that say so; it is
// stopped when the script ends.
func cmdEtcd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) > 1 {
		ts.Fatalf("usage: etcd [MEMBERS]")
	}
	members := 1
	if len(args) == 1 && args[0] != "1" {
		ts.Fatalf("only a one-member cluster is started by scripts")
	}
	dir := ts.MkAbs("etcd-data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		ts.Fatalf("%v", err)
	}
	c, err := etcdtest.StartCluster(dir, members)
	if err != nil {
		ts.Fatalf("start etcd: %v", err)
	}
	ts.Defer(c.Stop)
	ts.Setenv("ETCD", strings.Join(c.Endpoints(), ","))
}
