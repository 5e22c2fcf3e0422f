package token

import "testing"

// BenchmarkSign measures minting with a prepared Signer, the token
// endpoint's hot path.
func BenchmarkSign(b *testing.B) {
	for _, alg := range Algs() {
		b.Run(string(alg), func(b *testing.B) {
			s := mustSigner(b, mustGenerate(b, alg))
			c := validClaims()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Sign(c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerify measures Verify against a set holding one key per
// algorithm, as a set does during a rotation between algorithms.
func BenchmarkVerify(b *testing.B) {
	fx := newFixture(b)
	for _, alg := range Algs() {
		b.Run(string(alg), func(b *testing.B) {
			token := mustSign(b, fx.signers[alg], validClaims())
			b.ReportAllocs()
			for b.Loop() {
				if _, err := fx.set.Verify(token, testNow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
