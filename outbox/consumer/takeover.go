package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/lease"
)

// takeOver declares the durable consumer, or adopts the one there is. If a
// previous holder left messages unacked (it crashed, or lost its lease),
// JetStream would redeliver them only after their ack wait, behind later
// messages of the same keys; so the durable is reset to its ack floor
// instead, which redelivers everything after the floor in stream order at
// once. What had been handled is skipped by the inbox.
//
// The durable is never deleted, and its deliver policy is never changed:
// NATS refuses that ("deliver policy can not be updated"), and a durable
// deleted by a holder that then dies would make the next holder replay the
// whole stream. The reset ($JS.API.CONSUMER.RESET) is one atomic step on
// the server.
func (r *Runtime) takeOver(ctx context.Context, t *lease.Term, s outbox.Subscription) (jetstream.Consumer, error) {
	stream := streamOf(s)
	want := r.durableConfig(s, 0)
	cons, err := r.js.Consumer(ctx, stream, s.Consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		if s.Start.Past() {
			// A new consumer that starts in the past learns it from the
			// lake first, then follows the stream from where the lake
			// ended. A crash before the durable exists seeds again.
			seq, err := r.seed(ctx, t, s)
			if err != nil {
				return nil, err
			}
			want = r.durableConfig(s, seq)
		}
		cons, err = r.js.CreateConsumer(ctx, stream, want)
		if err != nil {
			return nil, fmt.Errorf("consumer %s: create durable consumer: %w", s.Consumer, err)
		}
		return cons, nil
	}
	if err != nil {
		return nil, fmt.Errorf("consumer %s: look up durable consumer: %w", s.Consumer, err)
	}
	info := cons.CachedInfo()
	if cfg, changed := adopt(info.Config, want); changed {
		if cons, err = r.js.UpdateConsumer(ctx, stream, cfg); err != nil {
			return nil, fmt.Errorf("consumer %s: update durable consumer: %w", s.Consumer, err)
		}
		r.log.Info("durable consumer updated", "consumer", s.Consumer)
	}
	if info.NumAckPending == 0 {
		return cons, nil
	}
	if r.opt.noReset || !r.canReset() {
		// Without the reset, wait until JetStream considers every unacked
		// message lost: it then redelivers all of them, in stream order,
		// before anything newer.
		r.log.Warn("this NATS server cannot reset a consumer (2.14 or later can): waiting one ack wait so that the unacked messages come back first, in order",
			"consumer", s.Consumer, "unacked", info.NumAckPending, "ack_wait", r.opt.AckWait)
		if !sleepCtx(ctx, info.Config.AckWait+fetchWait) {
			return nil, ctx.Err()
		}
		return cons, nil
	}
	res, err := r.js.ResetConsumer(ctx, stream, s.Consumer)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: reset to the ack floor: %w", s.Consumer, err)
	}
	r.log.Info("resuming from the ack floor", "consumer", s.Consumer, "start_seq", res.ResetSeq, "unacked", info.NumAckPending)
	return cons, nil
}

// durableConfig is the durable consumer of s as the runtime wants it,
// delivering from stream sequence start (0 or 1: everything the stream
// holds). A handler of a newer version of an event also reads the older
// versions' subjects: their events reach it upcast.
func (r *Runtime) durableConfig(s outbox.Subscription, start uint64) jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		Durable:       s.Consumer,
		Description:   "Cairn handler " + s.Consumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       r.opt.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: maxInFlight * 4,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if subjects := s.Subjects(); len(subjects) == 1 {
		cfg.FilterSubject = subjects[0]
	} else {
		cfg.FilterSubjects = subjects
	}
	if start > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	}
	return cfg
}

// adopt returns the durable's config with the settings the runtime manages
// set as wanted, and whether any changed. The deliver policy and start stay
// as the durable was created: they cannot change.
func adopt(have, want jetstream.ConsumerConfig) (jetstream.ConsumerConfig, bool) {
	cfg := have
	cfg.Description = want.Description
	cfg.FilterSubject = want.FilterSubject
	cfg.FilterSubjects = want.FilterSubjects
	cfg.AckWait = want.AckWait
	cfg.MaxDeliver = want.MaxDeliver
	cfg.MaxAckPending = want.MaxAckPending
	changed := cfg.Description != have.Description || cfg.FilterSubject != have.FilterSubject ||
		!slices.Equal(cfg.FilterSubjects, have.FilterSubjects) || cfg.AckWait != have.AckWait || cfg.MaxDeliver != have.MaxDeliver ||
		cfg.MaxAckPending != have.MaxAckPending
	return cfg, changed
}

// canReset reports whether the connected server has $JS.API.CONSUMER.RESET
// (nats-server 2.14 and later).
func (r *Runtime) canReset() bool {
	v := strings.TrimPrefix(r.js.Conn().ConnectedServerVersion(), "v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return major > 2 || (major == 2 && minor >= 14)
}
