// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Base} from "./Base.t.sol";
import {Vm} from "./utils/Test.sol";
import {Merkle} from "./utils/Merkle.sol";
import {QEVSettlement} from "../src/QEVSettlement.sol";

/**
 * @notice Gas figures for the README (`scripts/build-contracts --gas` prints them).
 *         A tree of 2^LOG_N leaves: 33 real allocations (one per controller, each controller holding no
 *         USDai before, i.e. the worst case for the payout transfer) + synthetic leaves. setUp settles the
 *         auction and claims one leaf, so measured claims are steady-state (claimed-bitmap word and the
 *         auction's claimed totals already non-zero); every measured call is the first call of its test,
 *         so storage is cold as in a real transaction.
 *         exec = gas used inside the call (vm.lastCallGas); tx = 21000 + calldata (16/4 per byte) + exec.
 */
abstract contract GasBase is Base {
    uint256 internal constant REAL = 33;
    uint256 internal constant BATCH = 32;

    QEVSettlement.Allocation[] internal allocs;
    bytes32[] internal tree;

    function logN() internal pure virtual returns (uint256);

    function setUp() public override {
        super.setUp();
        vm.pauseGasMetering();
        vm.warp(GENESIS + 1 days);
        for (uint256 i; i < REAL; i++) {
            address c = address(uint160(0x100000 + i));
            _deposit(c, 100e18);
            _request(c, 50e18);
        }
        _commit(T1);
        _commit(T2);
        vm.warp(T1);
        uint256 price = vault.redemptionSharePrice();
        uint256 n = 1 << logN();
        bytes32[] memory leaves = new bytes32[](n);
        for (uint256 i; i < REAL; i++) {
            allocs.push(_alloc(i + 1, address(uint160(0x100000 + i)), 20e18 + i * 1e15, 100 + i, price));
            leaves[i] = _leaf(T1, allocs[i]);
        }
        for (uint256 i = REAL; i < n; i++) {
            leaves[i] = keccak256(abi.encode("synthetic leaf", i));
        }
        bytes32[] memory t = Merkle.build(leaves);
        for (uint256 i; i < t.length; i++) tree.push(t[i]);
        (uint256 s, uint256 b, uint256 p) = _totals(allocs);
        _commitBook(T1, keccak256("book"));
        vm.prank(keeper);
        settlement.settleAuction(T1, t[0], keccak256("book"), s, b, p);
        // steady state: one leaf already claimed
        _claimMem(t, allocs[0]);
        vm.resumeGasMetering();
    }

    function _claimMem(bytes32[] memory t, QEVSettlement.Allocation memory a) internal {
        bytes32[] memory p = Merkle.proof(t, Merkle.indexOf(t, _leaf(T1, a)));
        settlement.claim(T1, a.redemptionId, a.controller, a.sharesFilled, a.sharesBurnt, a.payout, p);
    }

    function _calldataGas(bytes memory data) internal pure returns (uint256 g) {
        for (uint256 i; i < data.length; i++) g += data[i] == 0 ? 4 : 16;
    }

    function _report(string memory what, bytes memory data, uint256 claims) internal {
        Vm.Gas memory g = vm.lastCallGas();
        uint256 exec = g.gasTotalUsed;
        uint256 txGas = 21_000 + _calldataGas(data) + exec;
        string memory tag = string.concat("[2^", vm.toString(logN()), " leaves] ", what);
        emit log_named_uint(string.concat(tag, " exec gas"), exec);
        emit log_named_uint(string.concat(tag, " tx gas"), txGas);
        if (claims > 1) {
            emit log_named_uint(string.concat(tag, " exec gas per claim"), exec / claims);
            emit log_named_uint(string.concat(tag, " tx gas per claim"), txGas / claims);
        }
    }

    function test_gas_claimSingle() public {
        vm.pauseGasMetering();
        bytes32[] memory t = tree;
        QEVSettlement.Allocation memory a = allocs[1];
        bytes32[] memory p = Merkle.proof(t, Merkle.indexOf(t, _leaf(T1, a)));
        bytes memory data = abi.encodeCall(
            QEVSettlement.claim, (T1, a.redemptionId, a.controller, a.sharesFilled, a.sharesBurnt, a.payout, p)
        );
        vm.resumeGasMetering();
        (bool ok,) = address(settlement).call(data);
        assertTrue(ok);
        emit log_named_uint(string.concat("[2^", vm.toString(logN()), " leaves] proof length"), p.length);
        _report("claim", data, 1);
        assertEq(usdai.balanceOf(a.controller), a.payout);
    }

    function test_gas_claimMultiple32() public {
        vm.pauseGasMetering();
        bytes32[] memory t = tree;
        uint256[] memory idx = new uint256[](BATCH);
        for (uint256 i; i < BATCH; i++) idx[i] = Merkle.indexOf(t, _leaf(T1, allocs[i + 1]));
        (uint256[] memory order, bytes32[] memory proof, bool[] memory flags) = Merkle.multiProof(t, idx);
        QEVSettlement.Allocation[] memory batch = new QEVSettlement.Allocation[](BATCH);
        for (uint256 i; i < BATCH; i++) {
            for (uint256 j; j < BATCH; j++) {
                if (idx[j] == order[i]) batch[i] = allocs[j + 1];
            }
        }
        bytes memory data = abi.encodeCall(QEVSettlement.claimMultiple, (T1, batch, proof, flags));
        vm.resumeGasMetering();
        (bool ok,) = address(settlement).call(data);
        assertTrue(ok);
        emit log_named_uint(string.concat("[2^", vm.toString(logN()), " leaves] multiproof nodes"), proof.length);
        _report("claimMultiple(32)", data, BATCH);
        for (uint256 i; i < BATCH; i++) assertEq(usdai.balanceOf(allocs[i + 1].controller), allocs[i + 1].payout);
    }

    /// settleAuction only stores a root and totals: its cost does not depend on the number of leaves.
    function test_gas_settle() public {
        vm.pauseGasMetering();
        vm.warp(T2);
        _commitBook(T2, keccak256("book2"));
        bytes memory data = abi.encodeCall(
            QEVSettlement.settleAuction, (T2, tree[1], keccak256("book2"), 10e18, 1e18, 9e18)
        );
        vm.resumeGasMetering();
        vm.prank(keeper);
        (bool ok,) = address(settlement).call(data);
        assertTrue(ok);
        _report("settleAuction", data, 1);
    }
}

contract Gas2pow10Test is GasBase {
    function logN() internal pure override returns (uint256) {
        return 10;
    }
}

contract Gas2pow17Test is GasBase {
    function logN() internal pure override returns (uint256) {
        return 17;
    }
}
