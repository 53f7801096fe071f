/*
 * mmu_off: turn off the MMU, the I-cache and branch prediction.
 *
 * The A10/A13/A20/A23/A31 boot ROMs run with the MMU on over a 1:1 section
 * map. An SPL must start with all three off: it sets up DRAM and its own
 * caches from scratch, and the SPL thunk refuses to call it otherwise. The
 * map is 1:1, so the instruction after the SCTLR write fetches from the same
 * physical address; the ISB makes the new setting take effect before return.
 * The I-cache and branch predictor are then invalidated, so nothing cached
 * while the ROM ran can be hit later.
 *
 * SCTLR bits cleared: M (0) MMU, Z (11) branch prediction, I (12) I-cache.
 * The D-cache (C, bit 2) is left as is: those ROMs never turn it on.
 *
 * Calling convention (EXEC from the FEL boot ROM): uploaded to the scratch
 * address, called in ARM state as a leaf function; no parameters, no
 * results; uses r0 only; ARMv7-A (every SoC whose ROM turns the MMU on).
 */
	.syntax unified
	.arch	armv7-a
	.arm
	.text
	.global	mmu_off

	.equ	SCTLR_M, 1 << 0
	.equ	SCTLR_Z_I, (1 << 11) | (1 << 12)

mmu_off:
	mrc	p15, 0, r0, c1, c0, 0	@ SCTLR
	bic	r0, r0, #SCTLR_M
	bic	r0, r0, #SCTLR_Z_I
	dsb				@ the ROM's last stores reach memory first
	mcr	p15, 0, r0, c1, c0, 0
	isb
	mov	r0, #0
	mcr	p15, 0, r0, c7, c5, 0	@ ICIALLU: invalidate the I-cache
	mcr	p15, 0, r0, c7, c5, 6	@ BPIALL: invalidate the branch predictor
	dsb
	isb
	bx	lr
