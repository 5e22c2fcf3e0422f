// Command baseline is the yardstick for keymint serve's throughput, with bare
// net/http handlers that do the per-request work that cannot be avoided and
// nothing else (no vault, no reload, no throttling, no counting, no
// logging):
//
//   - POST /token: parse the Basic credentials and the form, check the
//     secret's HMAC in constant time, sign the same RFC 9068 JWT with the
//     same code, write the same JSON;
//   - GET /verify: take the API key from Authorization: Bearer, compute its
//     HMAC once and look that up in a map of MAC to key id; 200 with
//     X-Keymint-Key-Id, or 401.
//
// bench/run measures them beside keymint serve in one run.
//
// With -sign-once KEYFILE it is instead the yardstick for `keymint token
// issue`: a process that reads a signing key from a file (a stored
// vault.SigningKey as JSON, made on first use), signs one RFC 9068 JWT with
// the same code and prints it, with no vault, no unlock and no count.
//
// It prints its client id, client secret and API key on stdout, one per
// line, so the benchmark script can read them; they are throwaway values
// made at start.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	signOnce := flag.String("sign-once", "", "read the signing key in this file (made if missing), print one signed token, and exit")
	flag.Parse()
	if *signOnce != "" {
		if err := signOneToken(*signOnce); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := run(*listen); err != nil {
		log.Fatal(err)
	}
}

// signOneToken is the work of `keymint token issue` without the vault:
// read a key, sign one token.
func signOneToken(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key, err := token.GenerateSigningKey(token.ES256, time.Now())
		if err != nil {
			return err
		}
		if data, err = json.Marshal(token.ToVault(key)); err != nil {
			return err
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	var stored vault.SigningKey
	if err := json.Unmarshal(data, &stored); err != nil {
		return err
	}
	key, err := token.FromVault(&stored)
	if err != nil {
		return err
	}
	signer, err := token.NewSigner(key)
	if err != nil {
		return err
	}
	const id, iss = "cl_baselineclient00000", "http://127.0.0.1:8080"
	now := time.Now().Truncate(time.Second)
	jwt, err := signer.Sign(token.Claims{Issuer: iss, Subject: id, Audience: []string{iss}, IssuedAt: now, ExpiresAt: now.Add(time.Hour), ID: token.NewJTI(), ClientID: id, Scope: []string{"api:read"}})
	if err != nil {
		return err
	}
	_, err = fmt.Println(jwt)
	return err
}

func run(listen string) error {
	key, err := token.GenerateSigningKey(token.ES256, time.Now())
	if err != nil {
		return err
	}
	signer, err := token.NewSigner(key)
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
	apiKey, err := apikey.Generate("km")
	if err != nil {
		return err
	}
	keyIDs := map[string]string{string(mac(apiKey)): "key_baselinekey00000"}

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
		c := token.Claims{Issuer: iss, Subject: id, Audience: []string{iss}, IssuedAt: now, ExpiresAt: now.Add(time.Hour), ID: token.NewJTI(), ClientID: id, Scope: []string{"api:read"}}
		resp, err := token.Mint(signer, c, now)
		if err != nil {
			http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(resp)
	})
	http.HandleFunc("GET /verify", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		k, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		id, known := keyIDs[string(mac(k))]
		if !ok || !known {
			h.Set("WWW-Authenticate", `Bearer realm="keymint"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h.Set("X-Keymint-Key-Id", id)
		w.WriteHeader(http.StatusOK)
	})
	fmt.Println(clientID)
	fmt.Println(secret)
	fmt.Println(apiKey)
	fmt.Fprintf(os.Stderr, "listening on %s\n", iss)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second}
	return srv.Serve(ln)
}
