package main

import (
	"os"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/keymint/keymint/vault/etcdtest"
)

// etcd [tls] starts a real one-member etcd cluster for the script, on
// loopback, and sets $ETCD to its endpoints joined by commas, as an
// etcd:// URL takes them. With tls the member requires TLS and a client
// certificate: $ETCD_CA, $ETCD_CERT and $ETCD_KEY name the CA and the
// client's certificate and key. The cluster runs with raised transaction
// limits (etcdtest.MaxTxnOps); it is stopped when the script ends.
func cmdEtcd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) > 1 || (len(args) == 1 && args[0] != "tls") {
		ts.Fatalf("usage: etcd [tls]")
	}
	dir := ts.MkAbs("etcd-data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		ts.Fatalf("%v", err)
	}
	start := etcdtest.StartCluster
	if len(args) == 1 {
		start = etcdtest.StartTLSCluster
	}
	c, err := start(dir, 1)
	if err != nil {
		ts.Fatalf("start etcd: %v", err)
	}
	ts.Defer(c.Stop)
	ts.Setenv("ETCD", strings.Join(c.Endpoints(), ","))
	if f := c.TLS(); f != nil {
		ts.Setenv("ETCD_CA", f.CA)
		ts.Setenv("ETCD_CERT", f.ClientCert)
		ts.Setenv("ETCD_KEY", f.ClientKey)
	}
}
