/*
 * icache_off: turn the I-cache off and drop what it holds.
 *
 * Some boot ROMs (V853, R528/T113, A523: SocInfo.needs_icache_fix, sunxi-tools'
 * `icache_fix`) run FEL with the I-cache on. Every thunk is uploaded to the
 * same scratch address, so with the cache on a new thunk can execute the
 * previous thunk's stale instructions. sunxi-fel clears SCTLR.I and
 * invalidates the I-cache once per session before its first write
 * (aw_disable_icache() in fel_lib.c); so does felboot.
 *
 * Calling convention (EXEC from the FEL boot ROM): uploaded to the scratch
 * address, called in ARM state as a leaf function; no parameters, no
 * results; uses r0 only; ARMv7-A.
 */
	.syntax unified
	.arch	armv7-a
	.arm
	.text
	.global	icache_off

	.equ	SCTLR_I, 1 << 12

icache_off:
	mrc	p15, 0, r0, c1, c0, 0	@ SCTLR
	bic	r0, r0, #SCTLR_I
	mcr	p15, 0, r0, c1, c0, 0
	mov	r0, #0
	mcr	p15, 0, r0, c7, c5, 0	@ ICIALLU: invalidate the I-cache
	isb				@ refetch what follows with the cache off
	bx	lr
