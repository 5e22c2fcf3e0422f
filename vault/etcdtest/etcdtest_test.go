package etcdtest

import (
	"net"
	"testing"
	"time"
)

// TestStartKillRestart: members answer once Start returns, a killed member
// stops answering, and a restarted one answers again on the same address.
func TestStartKillRestart(t *testing.T) {
	start := time.Now()
	c := Start(t, 1)
	t.Logf("one member healthy after %v", time.Since(start))
	eps := c.Endpoints()
	if len(eps) != 1 {
		t.Fatalf("Endpoints() = %v, want one", eps)
	}
	dial := func() error {
		conn, err := net.DialTimeout("tcp", eps[0], time.Second)
		if err == nil {
			conn.Close()
		}
		return err
	}
	if err := dial(); err != nil {
		t.Fatalf("member not answering: %v", err)
	}
	c.Kill(0)
	if err := dial(); err == nil {
		t.Fatal("killed member still accepts connections")
	}
	if err := c.Restart(0); err != nil {
		t.Fatal(err)
	}
	if err := dial(); err != nil {
		t.Fatalf("restarted member not answering: %v", err)
	}
}

func TestStartRefusesNoMembers(t *testing.T) {
	if _, err := StartCluster(t.TempDir(), 0); err == nil {
		t.Error("StartCluster with no members succeeded")
	}
}
