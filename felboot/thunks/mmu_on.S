/*
 * mmu_on: turn the MMU, the I-cache and branch prediction (back) on.
 *
 * Run after the SPL returned, once the host has FEL-written the translation
 * table (the ROM's own, read before the SPL, with DRAM switched to
 * write-combine; or a fresh 1:1 table on SoCs whose ROM runs without the MMU,
 * SocInfo.mmu_tt_addr). The registers are written the way the A10/A13/A20
 * ROMs set them up:
 *
 *   TTBR0 = ttbr0        the table's address (16 KiB aligned)
 *   TTBCR = 0            short descriptors, TTBR0 translates every address
 *   DACR  = 0x55555555   every domain "client": the table's AP bits apply
 *
 * then the TLB, I-cache and branch predictor are invalidated (nothing stale
 * from before the SPL may be used), and SCTLR gets M (0), Z (11), I (12).
 *
 * Calling convention (EXEC from the FEL boot ROM):
 *   - Uploaded to the scratch address, called in ARM state as a leaf function.
 *   - Parameter block right after the code (label `params`):
 *
 *         params + 0   u32 ttbr0
 *
 *   - Uses only r0; no results; ARMv7-A.
 */
	.syntax unified
	.arch	armv7-a
	.arm
	.text
	.global	mmu_on

	.equ	SCTLR_M, 1 << 0
	.equ	SCTLR_Z_I, (1 << 11) | (1 << 12)

mmu_on:
	ldr	r0, ttbr0
	mcr	p15, 0, r0, c2, c0, 0	@ TTBR0
	mov	r0, #0
	mcr	p15, 0, r0, c2, c0, 2	@ TTBCR
	ldr	r0, all_clients
	mcr	p15, 0, r0, c3, c0, 0	@ DACR
	mov	r0, #0
	mcr	p15, 0, r0, c8, c7, 0	@ TLBIALL
	mcr	p15, 0, r0, c7, c5, 0	@ ICIALLU
	mcr	p15, 0, r0, c7, c5, 6	@ BPIALL
	dsb				@ the table the host wrote is in memory
	isb
	mrc	p15, 0, r0, c1, c0, 0	@ SCTLR
	orr	r0, r0, #SCTLR_M
	orr	r0, r0, #SCTLR_Z_I
	mcr	p15, 0, r0, c1, c0, 0
	isb
	bx	lr
all_clients:
	.word	0x55555555
params:				@ the builder appends the block here
	.equ	ttbr0, params + 0
