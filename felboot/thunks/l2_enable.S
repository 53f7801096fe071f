/*
 * l2_enable: switch the L2 cache on (A10, A13: SocInfo.needs_l2_enable).
 *
 * On the Cortex-A8 the L2 cache is enabled by bit 1 (L2EN) of the auxiliary
 * control register (cp15 c1, c0, 1). Those boot ROMs leave it off, and the
 * SPL expects it on; it is harmless with the MMU and D-cache off.
 *
 * Calling convention (EXEC from the FEL boot ROM): uploaded to the scratch
 * address, called in ARM state as a leaf function; no parameters, no
 * results; uses r0 only; ARMv7-A (Cortex-A8).
 */
	.syntax unified
	.arch	armv7-a
	.arm
	.text
	.global	l2_enable

	.equ	ACTLR_L2EN, 1 << 1

l2_enable:
	mrc	p15, 0, r0, c1, c0, 1	@ ACTLR
	orr	r0, r0, #ACTLR_L2EN
	mcr	p15, 0, r0, c1, c0, 1
	isb
	bx	lr
