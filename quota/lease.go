package quota

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keymint/keymint/vault"
)

// Defaults of a [Leaser].
const (
	// DefaultMaxBlock is the most uses one lease reserves. A block grows
	// only when it is used up before it lapses (MaxAge), so it stays within
	// about twice the uses its credential gets in MaxAge, and a crash
	// over-counts by at most that, and never more than this. Each vault
	// transaction costs some 1.5ms of CPU (its fsync, the hash-tree shard,
	// the head, the remembered state), on the cores that serve requests:
	// a block of 16,384 makes it a tenth of a microsecond a use for a
	// credential used 40,000 times a second, where 1,024 made it 2µs (a
	// tenth of a /verify). Near a limit blocks shrink (see maybeRefill).
	DefaultMaxBlock = 1 << 14

	// DefaultMaxAge is how long a lease, or a denial, lasts at most before
	// the vault is asked again, so that a limit changed or topped up by
	// another process applies within it.
	DefaultMaxAge = time.Second
)

// A Leaser hands out uses of credentials from blocks it reserves in the
// vault, so that a server can count every use exactly without a vault
// transaction per use. It is safe for concurrent use.
//
// # Reservations
//
// When a credential has no lease, or its lease is used up or has lapsed,
// [Leaser.Take] reserves a block of uses in one write transaction: it reads
// the credential's limits and counts as they are in the vault now, and adds
// the whole block to the counts up front, exactly as [Consume] adds one use.
// Until the block is used up, further uses of that credential are handed
// out from memory, with no file access. Every process that counts, CLI or
// server, therefore sees reserved uses as used, and no mix of processes can
// grant more uses than a limit allows. A crash can lose only the unused
// part of the blocks then held: uses that are counted but were never
// granted, an over-count that lapses with its period.
//
// # Block size
//
// A block is small and adapts: it starts at one use, doubles each time a
// block is used up (up to MaxBlock) and halves when one lapses with uses
// left over, so it follows the uses a credential gets within MaxAge: one
// used now and then reserves one use at a time. It is never more than a
// quarter of what the tightest limit has remaining, plus one, so near a
// limit blocks are single uses and other processes are never starved of
// the last few.
//
// While a block is reserved, other calls of Take for that credential wait
// for it; calls for other credentials go on from their leases. The
// Leaser's own transactions queue on the Vault's in-process lock rather
// than on the file lock, which other processes poll for.
//
// # Lapsing
//
// A block is counted under the keys of the periods current when it was
// reserved, so it lapses when the shortest of them ends, and after MaxAge
// at the latest. The unused part of a lapsed block is given back at the
// next reservation for that credential, by [Leaser.Flush], or by
// [Leaser.Close], which gives back every unused use.
//
// The Leaser's transactions write usage counters only, which do not
// advance the vault's generation: a server that reloads its records when
// the generation moves is not made to reload by its own leases.
type Leaser struct {
	v     *vault.Vault
	clock func() time.Time

	// MaxBlock caps the uses one reservation takes: more means fewer
	// transactions under load, and a larger over-count after a crash.
	// Zero means DefaultMaxBlock. Set it before the first Take.
	MaxBlock int64

	// MaxAge is the longest a lease or a denial is trusted before the
	// vault is asked again. Zero means DefaultMaxAge. Set it before the
	// first Take.
	MaxAge time.Duration

	// Observe, if set, is told of every committed reservation and give
	// back, with how many uses: a server's metrics. It is called with
	// the lease's lock held and must not block. Set it before the first
	// Take.
	Observe func(LeaseEvent)

	closed atomic.Bool
	mu     sync.RWMutex // guards leases
	leases map[string]*lease

	// refills counts background reservations in flight; Close waits for
	// them. closing orders starting one (closed still unset, then
	// refills.Add) before Close's Wait, as a WaitGroup requires.
	refills sync.WaitGroup
	closing sync.Mutex
}

// LeaseEvent is one committed change of the uses a Leaser holds.
type LeaseEvent struct {
	// Reserved is a block reserved (on demand, or ahead in the background
	// when Refill is set); GivenBack is unused uses returned to the vault.
	Reserved, GivenBack int64
	Refill              bool
}

func (l *Leaser) observe(e LeaseEvent) {
	if l.Observe != nil && (e.Reserved != 0 || e.GivenBack != 0) {
		l.Observe(e)
	}
}

// lease is one credential's block of reserved uses, or its denial.
type lease struct {
	mu sync.Mutex

	// keys are the period keys the block is counted under; left is how
	// many of its uses are not yet handed out.
	keys []string
	left int64

	// until is when the block, or the denial, lapses.
	until time.Time

	// allowed is the Decision for the use the block's reservation handed
	// out, with the block counted as used; a use handed out later has left
	// more remaining than that.
	allowed Decision

	// denied is set when the vault had no use left; blocking says why.
	denied   bool
	blocking Status

	// size is the block to ask for next, before the cap by remaining uses.
	size int64

	// gone is set when the lease's credential was removed; the lease is
	// then no longer in the map.
	gone bool

	// refilled is non-nil while the next block is reserved in the
	// background, and is closed once that block has joined the lease or
	// been given back.
	refilled chan struct{}
}

// NewLeaser returns a Leaser over v that reads the time from clock, or from
// time.Now if clock is nil.
func NewLeaser(v *vault.Vault, clock func() time.Time) *Leaser {
	if clock == nil {
		clock = time.Now
	}
	return &Leaser{v: v, clock: clock, leases: map[string]*lease{}}
}

func (l *Leaser) maxBlock() int64 {
	if l.MaxBlock > 0 {
		return l.MaxBlock
	}
	return DefaultMaxBlock
}

func (l *Leaser) maxAge() time.Duration {
	if l.MaxAge > 0 {
		return l.MaxAge
	}
	return DefaultMaxAge
}

// Take asks for one use of credential c, as [Consume] does, and returns
// the decision. Only c.ID is read: limits and counts come from the vault
// when a block is reserved, so a change made by another process applies
// within MaxAge.
//
// While c's lease lasts, Take decides in memory; otherwise it reserves a
// new block in one vault transaction. A denial is remembered until the
// blocking limit resets or MaxAge passes, whichever is sooner, so a
// credential over its limit costs no file access per request either.
// Errors come from the vault (such as [vault.ErrBusy]); a credential no
// longer in the vault gives an error wrapping [vault.ErrNotFound]. After
// [Leaser.Close], Take fails with [ErrLeaserClosed].
func (l *Leaser) Take(c *vault.Credential) (Decision, error) {
	for {
		ls, err := l.lease(c.ID)
		if err != nil {
			return Decision{}, err
		}
		d, retry, err := l.take(ls, c.ID)
		if !retry {
			return d, err
		}
	}
}

// lease returns the lease of credential id, making an empty one if there
// is none.
func (l *Leaser) lease(id string) (*lease, error) {
	if l.closed.Load() {
		return nil, ErrLeaserClosed
	}
	l.mu.RLock()
	ls := l.leases[id]
	l.mu.RUnlock()
	if ls != nil {
		return ls, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if ls = l.leases[id]; ls == nil {
		ls = &lease{size: 1}
		l.leases[id] = ls
	}
	return ls, nil
}

// take hands out one use from ls, reserving a block first when it needs
// one. retry is set when ls left the map while take waited for it.
func (l *Leaser) take(ls *lease, id string) (d Decision, retry bool, err error) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.gone {
		return Decision{}, true, nil
	}
	if l.closed.Load() {
		// Close has given back, or is about to give back, this lease's
		// uses; reserving more now would leave them counted for good.
		return Decision{}, false, ErrLeaserClosed
	}
	now := l.clock()
	if now.Before(ls.until) {
		if ls.left > 0 {
			ls.left--
			d := ls.handOut()
			l.maybeRefill(ls, id, now)
			return d, false, nil
		}
		if ls.denied {
			return Decision{Status: ls.blocking, Limited: true}, false, nil
		}
	}
	if refilled := ls.refilled; refilled != nil {
		// A block is on its way. Reserving another now would let the two
		// reservations' decisions, each read from the vault at its own
		// time, overwrite one another, and the remaining counts handed out
		// would be off by a block; wait for it and look again.
		ls.mu.Unlock()
		<-refilled
		ls.mu.Lock()
		return Decision{}, true, nil
	}
	var r reservation
	err = l.v.Update(func(tx *vault.Tx) error {
		var err error
		r, err = l.reserve(tx, ls, id, now)
		return err
	})
	if errors.Is(err, vault.ErrNotFound) {
		// The credential was removed, and its counts with it: nothing of
		// the block is left to give back.
		l.drop(id, ls)
		return Decision{}, false, err
	}
	if err != nil {
		return Decision{}, false, err
	}
	l.observe(LeaseEvent{Reserved: r.block, GivenBack: r.gaveBack})
	ls.apply(r)
	if ls.denied {
		return Decision{Status: ls.blocking, Limited: true}, false, nil
	}
	return ls.handOut(), false, nil
}

// maybeRefill starts reserving the next block in the background when a busy
// lease runs low, so that its requests go on being served from memory
// instead of all waiting for one reserving transaction (a file open and an
// fsync, milliseconds). Small blocks, denials and leases about to lapse are
// left to the ordinary reservation in take. It runs with ls.mu held.
func (l *Leaser) maybeRefill(ls *lease, id string, now time.Time) {
	size := min(ls.size*2, l.maxBlock())
	// Near a limit, uses held ahead by this server would be uses denied to
	// other processes: there blocks stay small and are reserved on demand.
	nearLimit := ls.allowed.Limited && ls.allowed.Status.Remaining < 8*size
	if ls.refilled != nil || ls.denied || nearLimit || ls.size < minRefillBlock || ls.left > ls.size/4 ||
		ls.until.Sub(now) < l.maxAge()/4 {
		return
	}
	l.closing.Lock()
	defer l.closing.Unlock()
	if l.closed.Load() {
		return
	}
	ls.refilled = make(chan struct{})
	l.refills.Add(1)
	go l.refill(ls, id, size)
}

// minRefillBlock is the smallest block worth refilling early: a credential
// using fewer uses per lease than this is not busy enough to stall.
const minRefillBlock = 8

// refill reserves a further block for ls and adds it to the uses left. A
// block that cannot join the lease (its periods rolled over meanwhile, or the
// lease ended) is given back at once.
func (l *Leaser) refill(ls *lease, id string, size int64) {
	defer l.refills.Done()
	var r reservation
	err := l.v.Update(func(tx *vault.Tx) error {
		var err error
		r, err = l.reserveBlock(tx, id, size, l.clock())
		return err
	})
	ls.mu.Lock()
	defer ls.mu.Unlock()
	defer func() {
		close(ls.refilled)
		ls.refilled = nil
	}()
	if err != nil || r.denied {
		return // take reserves, or learns the denial, as usual
	}
	l.observe(LeaseEvent{Reserved: r.block, Refill: true})
	if ls.gone || l.closed.Load() || !slices.Equal(r.keys, ls.keys) {
		// Lock order as in take: the lease, then the vault's.
		if l.v.Update(func(tx *vault.Tx) error { return tx.AddUsage(id, r.keys, -r.block) }) == nil {
			l.observe(LeaseEvent{GivenBack: r.block})
		}
		return
	}
	// r.allowed counts both blocks as used, so handOut stays exact with
	// left covering both.
	ls.left += r.block
	ls.allowed, ls.size, ls.until = r.allowed, r.size, r.until
}

// handOut is the decision for a use just taken from the block.
func (ls *lease) handOut() Decision {
	d := ls.allowed
	if d.Limited {
		d.Status.Used -= ls.left
		d.Status.Remaining += ls.left
	}
	return d
}

// drop removes a lease from the map for good.
func (l *Leaser) drop(id string, ls *lease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.leases[id] == ls {
		delete(l.leases, id)
	}
	ls.gone = true
}

// reservation is what one reserving transaction decided, applied to the
// lease only once the transaction has committed.
type reservation struct {
	keys     []string
	block    int64 // uses reserved; 0 when denied
	until    time.Time
	allowed  Decision
	denied   bool
	blocking Status
	size     int64
	// gaveBack is the unused part of the previous block given back first.
	gaveBack int64
}

// reserve gives back the unused part of ls's block, if any, and reserves a
// new one for credential id at now, or finds that none is left. It runs
// inside a write transaction and does not change ls.
func (l *Leaser) reserve(tx *vault.Tx, ls *lease, id string, now time.Time) (reservation, error) {
	size := ls.size
	if ls.left > 0 {
		if err := tx.AddUsage(id, ls.keys, -ls.left); err != nil {
			return reservation{}, err
		}
		size = max(size/2, 1) // the last block was more than needed
	} else if len(ls.keys) > 0 {
		size = min(size*2, l.maxBlock()) // the last block was used up
	}
	r, err := l.reserveBlock(tx, id, min(size, l.maxBlock()), now)
	r.gaveBack = ls.left
	return r, err
}

// reserveBlock reserves up to size uses for credential id at now, fewer near
// a limit, or finds that none is left. It runs inside a write transaction.
func (l *Leaser) reserveBlock(tx *vault.Tx, id string, size int64, now time.Time) (reservation, error) {
	c, err := tx.Credential(id)
	if err != nil {
		return reservation{}, err
	}
	t, err := readTally(tx, c, now)
	if err != nil {
		return reservation{}, err
	}
	until := now.Add(l.maxAge())
	if ok, blocking := Allow(t.statuses); !ok {
		return reservation{denied: true, blocking: blocking, until: earliest(until, blocking.ResetsAt), size: size}, nil
	}
	block := size
	if tightest, limited := Tightest(t.statuses); limited {
		block = min(block, tightest.Remaining/4+1)
	}
	if err := t.count(tx, block, now); err != nil {
		return reservation{}, err
	}
	// The block is counted under keys of the periods containing now; it
	// lapses when the shortest of them (the first) ends.
	until = earliest(until, t.periods[0].End(now))
	return reservation{
		keys:    t.keys,
		block:   block,
		until:   until,
		allowed: t.decision(),
		size:    size,
	}, nil
}

// apply makes a committed reservation the lease's state, handing out one
// use of a new block at once.
func (ls *lease) apply(r reservation) {
	ls.size, ls.until = r.size, r.until
	ls.denied, ls.blocking = r.denied, r.blocking
	if r.denied {
		ls.keys, ls.left, ls.allowed = nil, 0, Decision{}
		return
	}
	ls.keys, ls.left, ls.allowed = r.keys, r.block-1, r.allowed
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// Flush gives back, in one transaction, the unused uses of every lease that
// has lapsed, so that the counts of credentials gone idle are exact again.
// A server calls it now and then, say every few seconds; leases still in
// force are left alone.
func (l *Leaser) Flush() error {
	return l.giveBack(false)
}

// Close gives back every unused use of every lease in one transaction and
// stops the Leaser: later calls to Take fail with [ErrLeaserClosed]. If the
// vault cannot be written (it is busy, say), Close returns the error and
// the unused uses stay counted, an over-count that lapses with its period;
// calling Close again tries again.
func (l *Leaser) Close() error {
	l.closing.Lock()
	l.closed.Store(true)
	l.closing.Unlock()
	l.refills.Wait()
	return l.giveBack(true)
}

// giveBack returns the unused uses of lapsed leases, or of all of them.
// It holds every lease it gives back for while it writes, so none of them
// hands out a use meanwhile, and takes their locks in the order of their
// ids, so that two calls at once cannot deadlock.
func (l *Leaser) giveBack(all bool) error {
	l.mu.RLock()
	ids := make([]string, 0, len(l.leases))
	for id := range l.leases {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	leases := make([]*lease, len(ids))
	for i, id := range ids {
		leases[i] = l.leases[id]
	}
	l.mu.RUnlock()

	now := l.clock()
	type held struct {
		id string
		ls *lease
	}
	var returning []held
	defer func() {
		for _, h := range returning {
			h.ls.mu.Unlock()
		}
	}()
	for i, ls := range leases {
		ls.mu.Lock()
		if ls.gone || ls.left == 0 || (!all && now.Before(ls.until)) {
			ls.mu.Unlock()
			continue
		}
		returning = append(returning, held{ids[i], ls})
	}
	if len(returning) == 0 {
		return nil
	}
	err := l.v.Update(func(tx *vault.Tx) error {
		for _, h := range returning {
			if err := tx.AddUsage(h.id, h.ls.keys, -h.ls.left); err != nil {
				return fmt.Errorf("give back leased uses of %s: %w", h.id, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, h := range returning {
		l.observe(LeaseEvent{GivenBack: h.ls.left})
		h.ls.keys, h.ls.left = nil, 0
		h.ls.size = max(h.ls.size/2, 1)
	}
	return nil
}
