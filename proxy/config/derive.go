package config

// derive fills the defaults that depend on another value from the value the
// file gave, so that a default never contradicts what the administrator
// wrote (issue 15): a health-check timeout of at most half the interval,
// and a verdict refresh a quarter of the cache ttl ahead. When only the
// dependent key was written, the other one grows to fit it and a warning
// says so. Both written and inconsistent stays an error (validate).
func (c *checker) derive(cfg *Config) {
	const hc = "upstreams.health_check"
	h := &cfg.Upstreams.HealthCheck
	iw, tw := c.has(hc+".interval"), c.has(hc+".timeout")
	switch {
	case iw && !tw && h.Interval > 0:
		if half := h.Interval / 2; half > 0 && h.Timeout > half {
			h.Timeout = half
		} else if half == 0 {
			h.Timeout = h.Interval
		}
	case tw && !iw && h.Timeout > 0 && h.Timeout > h.Interval/2:
		was := h.Interval
		h.Interval = 2 * h.Timeout
		c.warnf(hc+".timeout", "set "+hc+".interval to choose it yourself",
			"interval not set: probing every %s (twice the timeout) instead of the default %s", h.Interval, was)
	}

	const cc = "policy.compliance.cache"
	ca := &cfg.Policy.Compliance.Cache
	ttlW, rbW := c.has(cc+".ttl"), c.has(cc+".refresh_before")
	switch {
	case ttlW && !rbW && ca.TTL > 0:
		if q := ca.TTL / 4; ca.RefreshBefore > q {
			ca.RefreshBefore = q
		}
	case rbW && !ttlW && ca.RefreshBefore > 0 && ca.RefreshBefore >= ca.TTL:
		was := ca.TTL
		ca.TTL = 4 * ca.RefreshBefore
		if ca.TTL < ca.RefreshBefore { // overflow
			ca.TTL = Duration(1<<63 - 1)
		}
		c.warnf(cc+".refresh_before", "set "+cc+".ttl to choose it yourself",
			"ttl not set: keeping verdicts %s (four times refresh_before) instead of the default %s", ca.TTL, was)
	}
}

// origin says where the value at path came from, for messages about two
// values that do not fit together: "" when the file wrote it, else that it
// is the default.
func (c *checker) origin(path string) string {
	if c.has(path) {
		return ""
	}
	return " (the default; set " + path + " to change it)"
}
