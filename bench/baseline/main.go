// Command baseline is the yardstick for keymint serve's /token throughput: a
// bare net/http handler that does the same per-request work that cannot be
// avoided — parse the Basic credentials and the form, check the secret's
// HMAC in constant time, sign the same RFC 9068 JWT with the same code, write
// the same JSON — and nothing else (no vault, no reload, no throttling, no
// logging). bench/run measures both in one run.
//
// It prints its client id and secret on stdout, one per line, so the
// benchmark script can read them; they are throwaway values made at start.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/issuer"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	if err := run(*listen); err != nil {
		log.Fatal(err)
	}
}

func run(listen string) error {
	key, err := issuer.GenerateSigningKey(issuer.ES256, time.Now())
	if err != nil {
		return err
	}
	signer, err := issuer.NewSigner(key)
	if err != nil {
		return err
	}
	secret, err := apikey.Generate("kmcs")
	if err != nil {
		return err
	}
	hmacKey := []byte("baseline hmac key")
	mac := func(s string) []byte {
		m := hmac.New(sha256.New, hmacKey)
		m.Write([]byte(s))
		return m.Sum(nil)
	}
	const clientID = "cl_baselineclient00000"
	want := mac(secret)

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	iss := "http://" + ln.Addr().String()
	http.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		id, pass, ok := r.BasicAuth()
		if err := r.ParseForm(); err != nil || !ok || r.PostForm.Get("grant_type") != "client_credentials" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		if _, err := apikey.Parse(pass); err != nil || id != clientID || !hmac.Equal(mac(pass), want) {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		now := time.Now().Truncate(time.Second)
		c := issuer.Claims{Issuer: iss, Subject: id, Audience: []string{iss}, IssuedAt: now, ExpiresAt: now.Add(time.Hour), ID: issuer.NewJTI(), ClientID: id, Scope: []string{"api:read"}}
		resp, err := issuer.Mint(signer, c, now)
		if err != nil {
			http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(resp)
	})
	fmt.Println(clientID)
	fmt.Println(secret)
	fmt.Fprintf(os.Stderr, "listening on %s\n", iss)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second}
	return srv.Serve(ln)
}
